"""Admin pages of the market app: instruments (with fetch/analyse actions and a chart), candles, analyses."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Max, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from apps.core.admin import ReadOnlyAdmin, ReadOnlyInline, ScreenAdmin, list_time
from apps.core.dispatch import job_dispatch_on_commit
from apps.core.models import JobStatus
from apps.market import admin_views, selectors
from apps.market.admin_candles import CandleAdmin
from apps.market.models import Candle, Instrument, MarketAnalysis, MarketEvent, Signal
from apps.market.services.analyses import analysis_request, analysis_slot
from workers.market import analysis_run, candles_fetch_latest

InstrumentView = Callable[[HttpRequest, Instrument], HttpResponse]


def _timeframes(instrument: Instrument) -> list[str]:
    """The timeframes the jobs keep up to date, else those with stored candles."""
    return list(instrument.timeframes) or selectors.candle_timeframes(instrument=instrument)


@admin.register(Instrument)
class InstrumentAdmin(ScreenAdmin):
    list_display = (
        "symbol", "exchange", "active", "timeframes", "candle_count", "newest_candle", "chart_link",
    )  # fmt: skip
    list_filter = ("active", "exchange", "quote")
    search_fields = ("symbol", "ccxt_symbol", "base", "quote")
    readonly_fields = ("chart_link", "created_at")
    actions = ("fetch_candles_now", "analyse_now")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Instrument]:
        # From the series' summary rows: counting the candles themselves scanned every one stored.
        return (
            super()
            .get_queryset(request)
            .annotate(
                candle_count=Coalesce(Sum("series__count"), 0), newest_candle=Max("series__newest_open")
            )
        )

    @admin.display(description="Candles", ordering="candle_count")
    def candle_count(self, instrument: Instrument) -> int:
        return instrument.candle_count

    newest_candle = list_time("newest_candle", "newest candle")

    @admin.display(description="Chart")
    def chart_link(self, instrument: Instrument) -> str:
        if instrument.pk is None:
            return "-"
        return format_html(
            '<a href="{}">Chart</a>', reverse("admin:market_instrument_chart", args=[instrument.pk])
        )

    @admin.action(description="Fetch new candles now")
    def fetch_candles_now(self, request: HttpRequest, queryset: QuerySet[Instrument]) -> None:
        enqueued, skipped = 0, []
        for instrument in queryset:
            timeframes = _timeframes(instrument)
            skipped += [] if timeframes else [instrument.symbol]
            for timeframe in timeframes:
                candles_fetch_latest.delay_on_commit(instrument.pk, timeframe)
                enqueued += 1
        self._report(request, f"Enqueued {enqueued} candle fetch task(s).", skipped)

    @admin.action(description="Analyse now")
    def analyse_now(self, request: HttpRequest, queryset: QuerySet[Instrument]) -> None:
        """One analysis row per instrument and timeframe for the current slot, each sent to a worker;
        one already made for the slot is not repeated."""
        enqueued, done, skipped = 0, 0, []
        slot = analysis_slot()
        for instrument in queryset:
            timeframes = _timeframes(instrument)
            skipped += [] if timeframes else [instrument.symbol]
            for timeframe in timeframes:
                analysis = analysis_request(instrument=instrument, timeframe=timeframe, slot=slot)
                if analysis.status == JobStatus.PENDING:
                    job_dispatch_on_commit(analysis_run, analysis)
                    enqueued += 1
                else:
                    done += 1
        message = f"Enqueued {enqueued} analysis task(s)."
        if done:
            message += f" {done} already analysed (or running) for the slot {slot:%H:%M} UTC."
        self._report(request, message, skipped)

    def _report(self, request: HttpRequest, message: str, skipped: list[str]) -> None:
        self.message_user(request, message, messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"Nothing to do for {', '.join(skipped)}: no timeframes set and no candles stored.",
                messages.WARNING,
            )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:instrument_id>/chart/",
                self._instrument_view(self._chart_page),
                name="market_instrument_chart",
            ),
            path(
                "<int:instrument_id>/chart/data/",
                self._instrument_view(admin_views.chart_data),
                name="market_instrument_chart_data",
            ),
            *super().get_urls(),
        ]

    def _chart_page(self, request: HttpRequest, instrument: Instrument) -> HttpResponse:
        return admin_views.chart_page(request, instrument, self)

    def _instrument_view(self, view: InstrumentView) -> Callable[..., HttpResponse]:
        """``view`` behind the admin login, for users who may view instruments."""

        def wrapped(request: HttpRequest, instrument_id: int) -> HttpResponse:
            if not self.has_view_permission(request):
                raise PermissionDenied
            return view(request, get_object_or_404(Instrument, pk=instrument_id))

        return self.admin_site.admin_view(wrapped)


admin.site.register(Candle, CandleAdmin)


class SignalInline(ReadOnlyInline):
    model = Signal
    fields = ("time", "direction", "strength", "source", "reason")


class MarketEventInline(ReadOnlyInline):
    model = MarketEvent
    fields = ("time", "kind", "magnitude", "description")


@admin.register(MarketAnalysis)
class MarketAnalysisAdmin(ReadOnlyAdmin):
    list_display = (
        "instrument", "timeframe", "slot_time", "status", "fetch_status", "last_close",
    )  # fmt: skip
    list_filter = ("status", "fetch_status", "timeframe", "instrument")
    list_select_related = ("instrument",)
    date_hierarchy = "slot"
    inlines = (SignalInline, MarketEventInline)
    slot_time = list_time("slot")


@admin.register(Signal)
class SignalAdmin(ReadOnlyAdmin):
    list_display = ("instrument", "timeframe", "at", "direction", "strength", "reason")
    at = list_time("time")
    list_filter = ("direction", "source", "timeframe", "instrument")
    list_select_related = ("instrument",)
    date_hierarchy = "time"


@admin.register(MarketEvent)
class MarketEventAdmin(ReadOnlyAdmin):
    list_display = ("instrument", "timeframe", "at", "kind", "magnitude", "description")
    at = list_time("time")
    list_filter = ("kind", "timeframe", "instrument")
    list_select_related = ("instrument",)
    date_hierarchy = "time"
