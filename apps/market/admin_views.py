"""The admin's chart page of an instrument and the JSON it draws: candles, indicators and patterns."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from django import forms
from django.contrib.admin import ModelAdmin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from apps.core.api import error_body
from apps.market import selectors
from apps.market.domain.candles import parse_timeframe
from apps.market.domain.indicators import IndicatorError
from apps.market.domain.patterns import PATTERNS, find, pattern_names
from apps.market.models import Instrument
from apps.market.queries import IndicatorRequest, parse_indicator_list

DEFAULT_BARS = 500
MAX_BARS = 5000
# The chart opens readable: only the patterns confirmed on the newest bars (what an analysis
# reports), a handful at most; every detection on 500 bars is about 160 labelled markers.
DEFAULT_PATTERNS = "recent"
PATTERN_GROUPS = ("all", "none", "recent", "candlestick", "chart")

# Outputs drawn on the price scale; every other output gets a pane of its own indicator.
PRICE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "SMA": ("value",),
    "EMA": ("value",),
    "WMA": ("value",),
    "VWAP": ("value",),
    "BB": ("middle", "upper", "lower"),
    "KC": ("middle", "upper", "lower"),
    "DC": ("middle", "upper", "lower"),
    "ICHIMOKU": ("conversion", "base", "span_a", "span_b"),
    "PSAR": ("value",),
}
# Outputs that read better as something other than a line; PSAR's trend is already told by the
# side of the price its dots are on, so it is sent but not drawn.
OUTPUT_STYLES: dict[tuple[str, str], str] = {
    ("PSAR", "value"): "dots",
    ("PSAR", "trend"): "hidden",
    ("MACD", "histogram"): "histogram",
}


def stored_timeframes(instrument: Instrument) -> list[str]:
    """Timeframes with candles for ``instrument``, shortest first."""
    return sorted(
        selectors.candle_timeframes(instrument=instrument), key=lambda name: parse_timeframe(name).duration
    )


class ChartQueryForm(forms.Form):
    """What to draw: a stored timeframe, how many of the newest bars, indicators and patterns."""

    timeframe = forms.CharField(max_length=4)
    bars = forms.IntegerField(min_value=10, max_value=MAX_BARS, initial=DEFAULT_BARS)
    indicators = forms.CharField(
        required=False, max_length=500, help_text="e.g. SMA(50),BB(20,2),RSI; empty for none"
    )
    patterns = forms.CharField(
        required=False,
        max_length=1000,
        initial=DEFAULT_PATTERNS,
        help_text=(
            f"recent (confirmed on the newest {selectors.RECENT_PATTERN_BARS} bars), none, chart, "
            "candlestick, all, or names such as doji,double_top"
        ),
    )

    def __init__(self, *args: Any, timeframes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeframes = timeframes
        self.fields["timeframe"].widget = forms.Select(choices=[(name, name) for name in timeframes])
        self.fields["patterns"].widget.attrs["list"] = "pattern-groups"

    def clean_timeframe(self) -> str:
        timeframe = self.cleaned_data["timeframe"]
        if timeframe not in self.timeframes:
            raise forms.ValidationError(
                f"no {timeframe} candles for this instrument; stored: {', '.join(self.timeframes) or 'none'}"
            )
        return timeframe

    def clean_indicators(self) -> list[IndicatorRequest]:
        text = self.cleaned_data["indicators"]
        if not text.strip():
            return []
        try:
            return parse_indicator_list(text)
        except IndicatorError as error:
            raise forms.ValidationError(str(error)) from None

    def clean_patterns(self) -> list[str] | str:
        """Pattern names, or "recent" for the detections confirmed on the newest bars."""
        text = self.cleaned_data["patterns"].strip().lower() or "none"
        if text == "recent":
            return text
        if text == "all":
            return list(PATTERNS)
        if text == "none":
            return []
        if text in ("candlestick", "chart"):
            return pattern_names(text)
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = sorted(set(names) - set(PATTERNS))
        if unknown:
            raise forms.ValidationError(
                f"unknown pattern(s) {', '.join(unknown)}; valid: {', '.join(PATTERN_GROUPS)}, "
                f"{', '.join(PATTERNS)}"
            )
        return names


def chart_form(request: HttpRequest, instrument: Instrument) -> ChartQueryForm:
    """The form bound to the query string, with defaults for whatever it leaves out."""
    timeframes = stored_timeframes(instrument)
    preferred = [name for name in instrument.timeframes if name in timeframes] or timeframes
    defaults = {
        "timeframe": preferred[0] if preferred else "",
        "bars": DEFAULT_BARS,
        "patterns": DEFAULT_PATTERNS,
    }
    return ChartQueryForm({**defaults, **request.GET.dict()}, timeframes=timeframes)


def chart_page(request: HttpRequest, instrument: Instrument, model_admin: ModelAdmin) -> HttpResponse:
    """The chart page; its script fetches :func:`chart_data` with the form's values."""
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "title": f"{instrument.symbol} ({instrument.exchange}) chart",
        "instrument": instrument,
        "form": chart_form(request, instrument),
        "max_bars": MAX_BARS,
        "pattern_groups": PATTERN_GROUPS,
        "chart_config": {"dataUrl": reverse("admin:market_instrument_chart_data", args=[instrument.pk])},
    }
    return TemplateResponse(request, "admin/market/instrument/chart.html", context)


def chart_data(request: HttpRequest, instrument: Instrument) -> JsonResponse:
    """Candles, indicator outputs aligned to them, and pattern detections, as JSON.

    ``times`` are candle open times in UTC epoch seconds; every candle and indicator array has
    one value per time, ``null`` where an indicator is still warming up. Bad input is a 400 in
    the API's error shape naming each field and what is valid.
    """
    form = chart_form(request, instrument)
    if not form.is_valid():
        fields = {name: list(errors) for name, errors in form.errors.items()}
        first_field, problems = next(iter(fields.items()))
        return JsonResponse(error_body("invalid", f"{first_field}: {problems[0]}", fields), status=400)
    query = form.cleaned_data
    frame = selectors.candles_frame(instrument=instrument, timeframe=query["timeframe"], limit=query["bars"])
    patterns = query["patterns"]
    if patterns == "recent":
        detections = selectors.recent_patterns(frame)
    else:
        detections = find(frame, patterns).to_dicts() if patterns and len(frame) else []
    return JsonResponse(
        {
            "instrument": {"id": instrument.pk, "symbol": instrument.symbol, "exchange": instrument.exchange},
            "timeframe": query["timeframe"],
            "count": len(frame),
            "times": frame.index.as_unit("s").asi8.tolist(),
            "candles": {name: _floats(frame[name].to_numpy()) for name in frame.columns},
            "indicators": _indicators(instrument, query["timeframe"], query["indicators"], frame.index),
            "patterns": detections,
        }
    )


def _indicators(
    instrument: Instrument, timeframe: str, requests: list[IndicatorRequest], times: pd.DatetimeIndex
) -> list[dict[str, Any]]:
    """Each requested indicator's outputs on ``times``, with the pane and style to draw them in."""
    if not requests or times.empty:
        return []
    computed_times, values = selectors.indicator_series(
        instrument=instrument, timeframe=timeframe, requests=requests, limit=len(times), end=times[-1]
    )
    # A candle stored between the two reads would shift the windows; match them by time instead.
    positions = computed_times.get_indexer(times)
    found = positions >= 0
    indicators = []
    for request in requests:
        name = request.indicator.name
        outputs = []
        for output, series in values[request.label].items():
            aligned = np.full(len(times), np.nan)
            aligned[found] = series[positions[found]]
            outputs.append(
                {
                    "name": output,
                    "pane": "price" if output in PRICE_OUTPUTS.get(name, ()) else request.label,
                    "style": OUTPUT_STYLES.get((name, output), "line"),
                    "values": _floats(aligned),
                }
            )
        indicators.append({"label": request.label, "name": name, "outputs": outputs})
    return indicators


def _floats(values: np.ndarray) -> list[float | None]:
    """JSON has no NaN: warm-up bars are null."""
    return [None if math.isnan(value) else value for value in values.tolist()]
