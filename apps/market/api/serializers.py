"""Input and output shapes of the market API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.market import selectors
from apps.market.domain.candles import TIMEFRAMES
from apps.market.domain.indicators import IndicatorError
from apps.market.domain.patterns import pattern_names
from apps.market.models import Instrument, MarketAnalysis, MarketEvent, Signal
from apps.market.queries import parse_indicator_list

MAX_LIMIT = 5000


class MarketQuerySerializer(serializers.Serializer):
    """``symbol`` (+ optional ``exchange``), ``timeframe``, ``limit`` and an optional ``start``/``end``;
    validated, it also holds the ``instrument`` and its candle ``series`` in that timeframe."""

    symbol = serializers.CharField(max_length=40)
    exchange = serializers.CharField(max_length=32, required=False)
    timeframe = serializers.ChoiceField(choices=list(TIMEFRAMES))
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=100)
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            instrument, series = selectors.instrument_series_resolve(
                symbol=attrs["symbol"], exchange=attrs.get("exchange"), timeframe=attrs["timeframe"]
            )
        except selectors.InstrumentNotFound as error:
            raise serializers.ValidationError({"symbol": [str(error)]}) from None
        if series is None:
            stored = selectors.candle_timeframes(instrument=instrument)
            raise serializers.ValidationError(
                {
                    "timeframe": [
                        f"no {attrs['timeframe']} candles for {instrument.symbol}; "
                        f"stored: {', '.join(stored) or 'none'}"
                    ]
                }
            )
        if attrs.get("start") and attrs.get("end") and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"end": ["end must not be before start"]})
        attrs["instrument"], attrs["series"] = instrument, series
        return attrs


class IndicatorQuerySerializer(MarketQuerySerializer):
    indicators = serializers.CharField(help_text="e.g. RSI,MACD,SMA(50),BB(20,2)")

    def validate_indicators(self, value: str) -> list:
        try:
            return parse_indicator_list(value)
        except IndicatorError as error:
            raise serializers.ValidationError(str(error)) from None


class PatternQuerySerializer(MarketQuerySerializer):
    patterns = serializers.CharField(
        default="all", help_text="all, or a comma-separated list of pattern names"
    )
    limit = serializers.IntegerField(min_value=10, max_value=MAX_LIMIT, default=500)

    def validate_patterns(self, value: str) -> list[str] | None:
        if value.strip().lower() == "all":
            return None
        names = [name.strip().lower() for name in value.split(",") if name.strip()]
        unknown = sorted(set(names) - set(pattern_names()))
        if unknown or not names:
            raise serializers.ValidationError(
                f"unknown pattern(s) {', '.join(unknown) or '(none given)'}; "
                f"valid: all, {', '.join(sorted(pattern_names()))}"
            )
        return names


class InstrumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Instrument
        fields = (
            "id", "symbol", "exchange", "ccxt_symbol", "base", "quote", "active", "timeframes",
            "amount_step", "price_step", "min_amount", "max_amount", "min_notional", "source", "created_at",
        )  # fmt: skip
        read_only_fields = fields


class SignalSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol")

    class Meta:
        model = Signal
        fields = (
            "id",
            "analysis",
            "symbol",
            "timeframe",
            "time",
            "direction",
            "strength",
            "source",
            "reason",
        )
        read_only_fields = fields


class MarketEventSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol")

    class Meta:
        model = MarketEvent
        fields = (
            "id",
            "analysis",
            "symbol",
            "timeframe",
            "time",
            "kind",
            "magnitude",
            "description",
            "details",
        )
        read_only_fields = fields


class MarketAnalysisSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol")
    exchange = serializers.CharField(source="instrument.exchange")
    signals = SignalSerializer(many=True, read_only=True)
    events = MarketEventSerializer(many=True, read_only=True)

    class Meta:
        model = MarketAnalysis
        fields = (
            "id", "symbol", "exchange", "timeframe", "slot", "status", "error", "fetch_status",
            "fetch_message", "candles_fetched", "last_candle_time", "last_close", "indicators", "regime",
            "patterns", "summary", "commentary", "signals", "events", "created_at", "finished_at",
        )  # fmt: skip
        read_only_fields = fields
