"""The admin's candle list: tens of millions of rows, so every query it sends reads one series
through the candle index (instrument, timeframe, open time) or reads the series' summary rows;
nothing sorts, counts or scans the whole table.

Newest first, with no column sorting. The row count comes from the summary rows while the list is
narrowed to instruments and timeframes only. Years and months are offered once a series is chosen
(its years from its summary row), where they are a range of its index: Django's date hierarchy
would ask for the first and last open time and the distinct years of every candle shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import (
    ALL_VAR,
    ERROR_FLAG,
    IS_FACETS_VAR,
    IS_POPUP_VAR,
    ORDER_VAR,
    PAGE_VAR,
    TO_FIELD_VAR,
)
from django.core.paginator import Paginator
from django.db.models import QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from apps.core.admin import ScreenAdmin, list_time
from apps.market.models import Candle, CandleSeries

INSTRUMENT_PARAMETER = "instrument__id__exact"
TIMEFRAME_PARAMETER = "timeframe__exact"
# Parameters that page or present the list without changing which rows it holds.
_PRESENTATION = {PAGE_VAR, ALL_VAR, ORDER_VAR, ERROR_FLAG, IS_FACETS_VAR, IS_POPUP_VAR, TO_FIELD_VAR}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def chosen_series(request: HttpRequest) -> CandleSeries | None:
    """The summary row of the series the list is narrowed to (an instrument and a timeframe), read
    once per request: both date filters and their lookups ask for it."""
    if not hasattr(request, "_candle_series"):
        instrument, timeframe = request.GET.get(INSTRUMENT_PARAMETER), request.GET.get(TIMEFRAME_PARAMETER)
        series = None
        if instrument is not None and timeframe is not None and instrument.isdigit():
            series = CandleSeries.objects.filter(instrument_id=int(instrument), timeframe=timeframe).first()
        request._candle_series = series  # type: ignore[attr-defined]
    return request._candle_series  # type: ignore[attr-defined,no-any-return]


def _utc_span(year: str, month: str | None = None) -> tuple[datetime, datetime]:
    """[first, after) of a year, or of one of its months, in UTC; a value that is not one is refused."""
    first = datetime(
        _whole_number(year, 1, 9998), 1 if month is None else _whole_number(month, 1, 12), 1, tzinfo=UTC
    )
    if month is None:
        return first, first.replace(year=first.year + 1)
    return first, first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)


def _whole_number(value: str, low: int, high: int) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise IncorrectLookupParameters(f"{value!r} is not a whole number from {low} to {high}")
    return int(value)


class YearFilter(admin.SimpleListFilter):
    """The chosen series' years (UTC), newest first."""

    title = "year (UTC)"
    parameter_name = "year"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Sequence[tuple[str, str]]:
        series = chosen_series(request)
        if series is None:
            return []
        years = range(series.newest_open.year, series.first_open.year - 1, -1)
        return [(str(year), str(year)) for year in years]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Candle]) -> QuerySet[Candle]:
        if self.value() is None or chosen_series(request) is None:
            return queryset
        first, after = _utc_span(str(self.value()))
        return queryset.filter(open_time__gte=first, open_time__lt=after)


class MonthFilter(admin.SimpleListFilter):
    """The months (UTC) of the chosen year."""

    title = "month (UTC)"
    parameter_name = "month"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Sequence[tuple[str, str]]:
        if YearFilter.parameter_name not in request.GET or chosen_series(request) is None:
            return []
        return [(str(number), name) for number, name in enumerate(_MONTHS, start=1)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Candle]) -> QuerySet[Candle]:
        year = request.GET.get(YearFilter.parameter_name)
        if self.value() is None or year is None or chosen_series(request) is None:
            return queryset
        first, after = _utc_span(year, str(self.value()))
        return queryset.filter(open_time__gte=first, open_time__lt=after)


class CountedPaginator(Paginator):
    """A paginator told how many rows there are, where the caller knows without counting them."""

    def __init__(self, *args: Any, known_count: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.known_count = known_count

    @cached_property
    def count(self) -> int:
        return super().count if self.known_count is None else self.known_count


class CandleAdmin(ScreenAdmin):
    """Read-only; see the module docstring for what each of its queries reads."""

    list_display = ("instrument", "timeframe", "opened", "open", "high", "low", "close", "volume")
    list_filter = ("instrument", "timeframe", YearFilter, MonthFilter)
    list_select_related = ("instrument",)
    # Backwards along the candle index: the newest first, within each series.
    ordering = ("-instrument__id", "-timeframe", "-open_time")
    sortable_by = ()
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a facet is a count of every candle per filter choice
    opened = list_time("open_time", "open time")

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet[Candle],
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> Paginator:
        return CountedPaginator(
            queryset, per_page, orphans, allow_empty_first_page, known_count=self._stored_count(request)
        )

    def _stored_count(self, request: HttpRequest) -> int | None:
        """The rows of a list narrowed to instruments and timeframes only, from the summary rows;
        None for any other list (its rows are counted, along a series' index)."""
        narrowing = set(request.GET) - _PRESENTATION
        if not narrowing <= {INSTRUMENT_PARAMETER, TIMEFRAME_PARAMETER}:
            return None
        series = CandleSeries.objects.all()
        if INSTRUMENT_PARAMETER in narrowing:
            instrument = request.GET[INSTRUMENT_PARAMETER]
            if not instrument.isdigit():
                return None
            series = series.filter(instrument_id=int(instrument))
        if TIMEFRAME_PARAMETER in narrowing:
            series = series.filter(timeframe=request.GET[TIMEFRAME_PARAMETER])
        total: int = series.aggregate(total=Coalesce(Sum("count"), 0))["total"]
        return total

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
