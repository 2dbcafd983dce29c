"""Query filters of the market list endpoints (django-filter)."""

from django_filters import rest_framework as filters

from apps.market.models import Instrument, MarketAnalysis, MarketEvent, Signal


class InstrumentFilter(filters.FilterSet):
    symbol = filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Instrument
        fields = ("symbol", "exchange", "active", "quote")


class BySymbolSince(filters.FilterSet):
    """``symbol`` (case-insensitive) and ``since`` (an ISO time; the field is set per subclass)."""

    symbol = filters.CharFilter(field_name="instrument__symbol", lookup_expr="iexact")
    since = filters.IsoDateTimeFilter(field_name="time", lookup_expr="gte")


class AnalysisFilter(BySymbolSince):
    since = filters.IsoDateTimeFilter(field_name="slot", lookup_expr="gte")

    class Meta:
        model = MarketAnalysis
        fields = ("symbol", "timeframe", "status", "since")


class SignalFilter(BySymbolSince):
    class Meta:
        model = Signal
        fields = ("symbol", "timeframe", "direction", "source", "since")


class EventFilter(BySymbolSince):
    class Meta:
        model = MarketEvent
        fields = ("symbol", "timeframe", "kind", "since")
