"""Market endpoints of the brief: candles, indicators, patterns; and the stored analyses."""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import pandas as pd
from django.db.models import QuerySet
from django.http import HttpResponseBase
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import validated
from apps.core.job_wait import WAIT_PARAMETER, job_awaited
from apps.market import selectors
from apps.market.api.answers import market_answer, reused_answer
from apps.market.api.filters import AnalysisFilter, EventFilter, InstrumentFilter, SignalFilter
from apps.market.api.serializers import (
    IndicatorQuerySerializer,
    InstrumentSerializer,
    MarketAnalysisSerializer,
    MarketEventSerializer,
    MarketQuerySerializer,
    PatternQuerySerializer,
    SignalSerializer,
)
from apps.market.models import Instrument, MarketAnalysis, MarketEvent, Signal


def _times(index: pd.DatetimeIndex) -> list[str]:
    """ISO 8601 in UTC, as ``Timestamp.isoformat()`` writes a whole second (candles open on one);
    formatted by numpy at once: one ``isoformat()`` per candle was a fifth of a 1000-candle answer."""
    naive = index.tz_convert("UTC").tz_localize(None).to_numpy()
    return cast(list[str], (np.datetime_as_string(naive, unit="s").astype(object) + "+00:00").tolist())


def _floats(values: np.ndarray) -> list[float | None]:
    """JSON has no NaN: warm-up bars are null."""
    return [None if math.isnan(value) else value for value in values.tolist()]


def _header(query: dict[str, Any]) -> dict[str, Any]:
    instrument = query["instrument"]
    return {"symbol": instrument.symbol, "exchange": instrument.exchange, "timeframe": query["timeframe"]}


class _MarketAnswerView(APIView):
    """A market answer: its query validated by ``query_serializer``, built by ``answer`` and reused
    while its candle series is unchanged (:mod:`apps.market.api.answers`)."""

    query_serializer: type[MarketQuerySerializer]

    def get(self, request: Request) -> HttpResponseBase:
        if (reused := reused_answer(request)) is not None:
            return reused
        query = validated(self.query_serializer, request.query_params)
        return market_answer(request, query["series"], lambda: self.answer(query))

    @staticmethod
    def answer(query: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


@extend_schema_view(get=extend_schema(parameters=[MarketQuerySerializer], responses=dict))
class MarketDataView(_MarketAnswerView):
    """The newest ``limit`` candles (oldest first), optionally within ``start``/``end``."""

    query_serializer = MarketQuerySerializer

    @staticmethod
    def answer(query: dict[str, Any]) -> dict[str, Any]:
        frame = selectors.candles_frame(
            instrument=query["instrument"],
            timeframe=query["timeframe"],
            start=query.get("start"),
            end=query.get("end"),
            limit=query["limit"],
        )
        keys = ("time", *frame.columns)
        columns = (frame[name].tolist() for name in frame.columns)
        candles = [
            dict(zip(keys, row, strict=True)) for row in zip(_times(frame.index), *columns, strict=True)
        ]
        return {**_header(query), "count": len(candles), "candles": candles}


@extend_schema_view(get=extend_schema(parameters=[IndicatorQuerySerializer], responses=dict))
class IndicatorsView(_MarketAnswerView):
    """Named indicator outputs aligned to candle times: ``indicators=RSI,MACD(12,26,9),SMA(50)``."""

    query_serializer = IndicatorQuerySerializer

    @staticmethod
    def answer(query: dict[str, Any]) -> dict[str, Any]:
        times, values = selectors.indicator_series(
            instrument=query["instrument"],
            timeframe=query["timeframe"],
            requests=query["indicators"],
            limit=query["limit"],
            start=query.get("start"),
            end=query.get("end"),
        )
        indicators = {
            label: {name: _floats(series) for name, series in outputs.items()}
            for label, outputs in values.items()
        }
        return {**_header(query), "count": len(times), "times": _times(times), "indicators": indicators}


@extend_schema_view(get=extend_schema(parameters=[PatternQuerySerializer], responses=dict))
class PatternsView(_MarketAnswerView):
    """Candlestick and chart patterns detected on the newest ``limit`` bars."""

    query_serializer = PatternQuerySerializer

    @staticmethod
    def answer(query: dict[str, Any]) -> dict[str, Any]:
        detections = selectors.pattern_detections(
            instrument=query["instrument"],
            timeframe=query["timeframe"],
            names=query["patterns"],
            limit=query["limit"],
            start=query.get("start"),
            end=query.get("end"),
        )
        return {**_header(query), "count": len(detections), "patterns": detections}


class InstrumentListView(generics.ListAPIView):
    serializer_class = InstrumentSerializer
    filterset_class = InstrumentFilter

    def get_queryset(self) -> QuerySet[Instrument]:
        return selectors.instrument_list()


class AnalysisListView(generics.ListAPIView):
    serializer_class = MarketAnalysisSerializer
    filterset_class = AnalysisFilter

    def get_queryset(self) -> QuerySet[MarketAnalysis]:
        return selectors.analysis_list().prefetch_related("signals__instrument", "events__instrument")


class AnalysisDetailView(APIView):
    @extend_schema(parameters=[WAIT_PARAMETER], responses=MarketAnalysisSerializer)
    def get(self, request: Request, analysis_id: str) -> Response:
        analyses = selectors.analysis_list()
        analysis = job_awaited(request, lambda: get_object_or_404(analyses, pk=int(analysis_id)))
        return Response(MarketAnalysisSerializer(analysis).data)


class SignalListView(generics.ListAPIView):
    serializer_class = SignalSerializer
    filterset_class = SignalFilter

    def get_queryset(self) -> QuerySet[Signal]:
        return selectors.signal_list()


class EventListView(generics.ListAPIView):
    serializer_class = MarketEventSerializer
    filterset_class = EventFilter

    def get_queryset(self) -> QuerySet[MarketEvent]:
        return selectors.event_list()
