"""Query filters of the market list endpoints (django-filter)."""

from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from rest_framework.exceptions import ValidationError

from apps.market.models import Instrument, MarketAnalysis, MarketEvent, Signal


class InstrumentFilter(filters.FilterSet):
    symbol = filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Instrument
        fields = ("symbol", "exchange", "active", "quote")


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    """An ISO time in any offset, compared in UTC: PostgreSQL refuses offsets beyond 15:59, and a
    time the database cannot hold is a 400, not a 500."""

    def __init__(self, *args: Any, param: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.param = param  # the query parameter, for the error

    def filter(self, qs: QuerySet, value: datetime | None) -> QuerySet:
        if value is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError:
                raise ValidationError(
                    {self.param: ["the time is outside the range the API stores"]}
                ) from None
        return super().filter(qs, value)


class BySymbolSince(filters.FilterSet):
    """``symbol`` (case-insensitive) and ``since`` (an ISO time; the field is set per subclass)."""

    symbol = filters.CharFilter(field_name="instrument__symbol", lookup_expr="iexact")
    since = UtcDateTimeFilter(field_name="time", lookup_expr="gte", param="since")


class AnalysisFilter(BySymbolSince):
    since = UtcDateTimeFilter(field_name="slot", lookup_expr="gte", param="since")

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
