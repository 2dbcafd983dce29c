"""Instruments, their candles, and the stored results of the 30-minute market analysis."""

from __future__ import annotations

from django.db import models

from apps.core.models import Job
from apps.market.domain.candles import TIMEFRAMES

TIMEFRAME_CHOICES = [(name, name) for name in TIMEFRAMES]


class Instrument(models.Model):
    """A market on an exchange: ``BTCUSDT`` on binance is ccxt's ``BTC/USDT``."""

    symbol = models.CharField(max_length=32, help_text="The exchange's market id, e.g. BTCUSDT")
    exchange = models.CharField(max_length=32, default="binance", help_text="A ccxt exchange id")
    ccxt_symbol = models.CharField(max_length=40, help_text="ccxt's unified symbol, e.g. BTC/USDT")
    base = models.CharField(max_length=16)
    quote = models.CharField(max_length=16)
    active = models.BooleanField(
        default=True, help_text="Analysed, trained on and traded by the scheduled jobs"
    )
    timeframes = models.JSONField(
        default=list, blank=True, help_text="Timeframes the scheduled jobs keep up to date"
    )
    amount_step = models.DecimalField(max_digits=30, decimal_places=18, null=True, blank=True)
    price_step = models.DecimalField(max_digits=30, decimal_places=18, null=True, blank=True)
    min_amount = models.DecimalField(max_digits=30, decimal_places=18, null=True, blank=True)
    max_amount = models.DecimalField(max_digits=30, decimal_places=18, null=True, blank=True)
    min_notional = models.DecimalField(max_digits=30, decimal_places=18, null=True, blank=True)
    source = models.CharField(max_length=200, blank=True, default="", help_text="Where its candles come from")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("symbol", "exchange")
        constraints = [
            models.UniqueConstraint(fields=("exchange", "symbol"), name="instrument_unique_per_exchange")
        ]

    def __str__(self) -> str:
        return f"{self.symbol} ({self.exchange})"


class Candle(models.Model):
    """One OHLCV bar; ``open_time`` is UTC. Prices are analytics floats, not ledger values."""

    # No index of its own: the unique constraint below leads with it. No database-level foreign key
    # either: PostgreSQL checks one with a trigger per inserted row, which more than doubled the
    # time of a bulk import (5.7 s instead of 2.3 s for 1M candles, measured). Candles are only
    # written by the market services for an instrument they hold; Django still cascades deletes.
    instrument = models.ForeignKey(
        Instrument, on_delete=models.CASCADE, related_name="candles", db_index=False, db_constraint=False
    )
    timeframe = models.CharField(max_length=4, choices=TIMEFRAME_CHOICES)
    open_time = models.DateTimeField()
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField()

    class Meta:
        ordering = ("instrument", "timeframe", "open_time")
        constraints = [
            # Also the index for range reads: (instrument, timeframe) equality, open_time range.
            models.UniqueConstraint(
                fields=("instrument", "timeframe", "open_time"), name="candle_unique_bar"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument.symbol} {self.timeframe} {self.open_time:%Y-%m-%d %H:%M}"


class CandleSeries(models.Model):
    """What is stored of one instrument in one timeframe, kept up to date by every write of candles:
    the API, health and freshness read this row instead of scanning the candle table."""

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="series")
    timeframe = models.CharField(max_length=4, choices=TIMEFRAME_CHOICES)
    first_open = models.DateTimeField(help_text="Open time of the oldest stored candle")
    newest_open = models.DateTimeField(help_text="Open time of the newest stored candle (always closed)")
    count = models.PositiveBigIntegerField(help_text="Stored candles")
    updated_at = models.DateTimeField(auto_now=True, help_text="When candles were last written")

    class Meta:
        ordering = ("instrument", "timeframe")
        constraints = [
            models.UniqueConstraint(fields=("instrument", "timeframe"), name="candle_series_unique")
        ]
        verbose_name_plural = "candle series"

    def __str__(self) -> str:
        return (
            f"{self.instrument} {self.timeframe}: {self.count} candles to {self.newest_open:%Y-%m-%d %H:%M}"
        )

    @property
    def version(self) -> str:
        """Changes with every write of the series' candles (``updated_at``; the count and the newest
        candle guard a clock set back): what a cached answer or window of them was read at."""
        return f"{self.updated_at.isoformat()}|{self.count}|{self.newest_open.isoformat()}"


class MarketAnalysis(Job):
    """The analysis of one instrument and timeframe for one 30-minute slot (unique: reruns add nothing)."""

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="analyses")
    timeframe = models.CharField(max_length=4, choices=TIMEFRAME_CHOICES)
    slot = models.DateTimeField(help_text="Start of the 30-minute slot (UTC) this analysis belongs to")
    fetch_status = models.CharField(max_length=16, blank=True, default="")
    fetch_message = models.CharField(max_length=500, blank=True, default="")
    candles_fetched = models.PositiveIntegerField(default=0)
    last_candle_time = models.DateTimeField(null=True, blank=True)
    last_close = models.FloatField(null=True, blank=True)
    stale = models.BooleanField(
        default=False, help_text="The newest candle is more than a bar old: no signals were derived from it"
    )
    freshness = models.CharField(
        max_length=200, blank=True, default="", help_text="How old the newest candle is"
    )
    indicators = models.JSONField(default=dict, blank=True, help_text="Latest value of each indicator output")
    regime = models.JSONField(default=dict, blank=True, help_text="Trend and volatility regime")
    patterns = models.JSONField(default=list, blank=True, help_text="Patterns detected on recent bars")
    summary = models.TextField(blank=True, default="")
    commentary = models.JSONField(default=dict, blank=True, help_text="LLM commentary, or why there is none")

    class Meta:
        ordering = ("-slot", "instrument")
        verbose_name_plural = "market analyses"
        constraints = [
            models.UniqueConstraint(
                fields=("instrument", "timeframe", "slot"), name="analysis_unique_per_slot"
            )
        ]

    def __str__(self) -> str:
        return f"{self.instrument.symbol} {self.timeframe} @ {self.slot:%Y-%m-%d %H:%M}"


class Direction(models.TextChoices):
    LONG = "long"
    SHORT = "short"
    NEUTRAL = "neutral"


class Signal(models.Model):
    """A directional view derived by an analysis, with its source and reason."""

    analysis = models.ForeignKey(MarketAnalysis, on_delete=models.CASCADE, related_name="signals")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="signals")
    timeframe = models.CharField(max_length=4, choices=TIMEFRAME_CHOICES)
    time = models.DateTimeField(help_text="Open time of the candle the signal was computed on")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    strength = models.FloatField(help_text="0 (weak) to 1 (strong)")
    source = models.CharField(max_length=64)
    reason = models.CharField(max_length=300)

    class Meta:
        ordering = ("-time", "source")
        constraints = [models.UniqueConstraint(fields=("analysis", "source"), name="signal_unique_source")]

    def __str__(self) -> str:
        return f"{self.direction} {self.instrument.symbol} ({self.source})"


class MarketEvent(models.Model):
    """A notable event in the data: a volatility or volume spike, a breakout, a trend change, a gap."""

    class Kind(models.TextChoices):
        VOLATILITY_SPIKE = "volatility_spike"
        VOLUME_SPIKE = "volume_spike"
        LEVEL_BREAKOUT = "level_breakout"
        TREND_CHANGE = "trend_change"
        GAP = "gap"

    analysis = models.ForeignKey(MarketAnalysis, on_delete=models.CASCADE, related_name="events")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="events")
    timeframe = models.CharField(max_length=4, choices=TIMEFRAME_CHOICES)
    time = models.DateTimeField()
    kind = models.CharField(max_length=24, choices=Kind.choices)
    magnitude = models.FloatField(help_text="How far from normal, e.g. a z-score or a percentage")
    description = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-time", "kind")
        constraints = [
            models.UniqueConstraint(
                fields=("instrument", "timeframe", "time", "kind"), name="event_unique_per_bar"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.instrument.symbol} {self.time:%Y-%m-%d %H:%M}"
