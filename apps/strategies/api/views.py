"""Strategy endpoints: strategies, backtests, optimisations, generation, versions and decisions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import validated
from apps.core.dispatch import job_dispatch_on_commit
from apps.core.symbols import normalise_symbol
from apps.strategies import selectors
from apps.strategies.api.serializers import (
    AcceptedSerializer,
    BacktestRequestSerializer,
    BacktestSerializer,
    DecisionSerializer,
    GenerationAcceptedSerializer,
    GenerationRequestSerializer,
    GenerationSerializer,
    OptimizationRequestSerializer,
    OptimizationSerializer,
    StrategyCreateSerializer,
    StrategyDeletedSerializer,
    StrategySerializer,
    StrategyUpdateSerializer,
    UpdateRunDetailSerializer,
    UpdateRunSerializer,
    VersionSerializer,
)
from apps.strategies.errors import StrategyInputError
from apps.strategies.models import (
    Backtest,
    GenerationRun,
    JobTrigger,
    OptimizationRun,
    Strategy,
    StrategyDecision,
    StrategyUpdateRun,
    StrategyVersion,
)
from apps.strategies.services.backtests import backtest_create
from apps.strategies.services.generation import generation_create
from apps.strategies.services.optimizations import optimization_create
from apps.strategies.services.strategies import strategy_create, strategy_delete, strategy_update
from workers.strategies import backtest_run, generate_run, optimization_enqueue


@contextmanager
def _bad_request() -> Iterator[None]:
    """A service's StrategyInputError is the client's 400; its fields are the error's fields."""
    try:
        yield
    except StrategyInputError as error:
        raise ValidationError(error.fields) from None


def _strategy(strategy_id: str) -> Strategy:
    try:
        return selectors.strategy_get(strategy_id=strategy_id)
    except Strategy.DoesNotExist:
        raise Http404 from None


def _accepted(job: Backtest | OptimizationRun, url_name: str, **kwargs: int) -> Response:
    body = {
        "id": job.pk,
        "strategy_id": job.strategy.strategy_id,
        "version": job.version.number,
        "status": job.status,
        "url": reverse(url_name, kwargs=kwargs),
    }
    return Response(AcceptedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class StrategyFilter(filters.FilterSet):
    symbol = filters.CharFilter(method="filter_symbol", help_text="BTCUSDT or BTC/USDT")
    exchange = filters.CharFilter(field_name="instrument__exchange", lookup_expr="iexact")

    class Meta:
        model = Strategy
        fields = ("status", "type", "source", "timeframe", "symbol", "exchange")

    def filter_symbol(self, queryset: QuerySet[Strategy], name: str, value: str) -> QuerySet[Strategy]:
        return queryset.filter(instrument__symbol=normalise_symbol(value))


class StrategiesView(generics.ListAPIView):
    """GET: strategies, newest first (``?status=active&symbol=BTCUSDT``). POST: create one (201)."""

    serializer_class = StrategySerializer
    filterset_class = StrategyFilter

    def get_queryset(self) -> QuerySet[Strategy]:
        return selectors.strategy_list()

    @extend_schema(request=StrategyCreateSerializer, responses={201: StrategySerializer})
    def post(self, request: Request) -> Response:
        with _bad_request():
            strategy = strategy_create(**validated(StrategyCreateSerializer, request.data))
        return Response(StrategySerializer(strategy).data, status=status.HTTP_201_CREATED)


class StrategyDetailView(APIView):
    """GET one strategy; PATCH to activate, pause, retire or edit it (a new version); DELETE it."""

    @extend_schema(responses=StrategySerializer)
    def get(self, request: Request, strategy_id: str) -> Response:
        return Response(StrategySerializer(_strategy(strategy_id)).data)

    @extend_schema(request=StrategyUpdateSerializer, responses=StrategySerializer)
    def patch(self, request: Request, strategy_id: str) -> Response:
        strategy = _strategy(strategy_id)
        with _bad_request():
            strategy = strategy_update(strategy=strategy, **validated(StrategyUpdateSerializer, request.data))
        return Response(StrategySerializer(strategy).data)

    @extend_schema(responses={204: None, 200: StrategyDeletedSerializer})
    def delete(self, request: Request, strategy_id: str) -> Response:
        """A draft with no backtests, optimisations or decisions is deleted (204); any other strategy
        is retired and kept with its history (200, saying so)."""
        strategy = _strategy(strategy_id)
        if strategy_delete(strategy=strategy):
            return Response(status=status.HTTP_204_NO_CONTENT)
        body = {
            "strategy_id": strategy_id,
            "deleted": False,
            "status": "retired",
            "message": "the strategy has a history (versions, backtests or decisions): retired and kept",
        }
        return Response(StrategyDeletedSerializer(body).data)


class VersionListView(generics.ListAPIView):
    """Every version of a strategy, newest first."""

    serializer_class = VersionSerializer

    def get_queryset(self) -> QuerySet[StrategyVersion]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no strategy_id
            return StrategyVersion.objects.none()
        return selectors.version_list(strategy=_strategy(self.kwargs["strategy_id"]))


class DecisionListView(generics.ListAPIView):
    """Everything decided about a strategy (by users and the daily update), newest first."""

    serializer_class = DecisionSerializer
    filterset_fields = ("kind",)

    def get_queryset(self) -> QuerySet[StrategyDecision]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no strategy_id
            return StrategyDecision.objects.none()
        return selectors.decision_list(strategy=_strategy(self.kwargs["strategy_id"]))


class BacktestCreateView(APIView):
    """Backtest the strategy's current version on a window of stored candles (202; poll the URL)."""

    @extend_schema(request=BacktestRequestSerializer, responses={202: AcceptedSerializer})
    def post(self, request: Request) -> Response:
        data = validated(BacktestRequestSerializer, request.data)
        with _bad_request():
            backtest = backtest_create(
                strategy=data["strategy_id"],
                start=data["start_date"],
                end=data["end_date"],
                initial_capital=data["initial_capital"],
                commission=data["commission"],
                slippage=data["slippage"],
                trigger=JobTrigger.API,
            )
        job_dispatch_on_commit(backtest_run, backtest)
        return _accepted(backtest, "strategies-backtest-detail", backtest_id=backtest.pk)


class BacktestDetailView(APIView):
    @extend_schema(responses=BacktestSerializer)
    def get(self, request: Request, backtest_id: str) -> Response:
        try:
            backtest = selectors.backtest_list().get(pk=int(backtest_id))
        except Backtest.DoesNotExist:
            raise Http404 from None
        return Response(BacktestSerializer(backtest).data)


class OptimizeView(APIView):
    """Search the strategy's parameters walk-forward, in chunks shared by the workers (202)."""

    @extend_schema(request=OptimizationRequestSerializer, responses={202: AcceptedSerializer})
    def post(self, request: Request) -> Response:
        data = validated(OptimizationRequestSerializer, request.data)
        with _bad_request():
            run = optimization_create(
                strategy=data.pop("strategy_id"),
                start=data.pop("start_date", None),
                end=data.pop("end_date", None),
                trigger=JobTrigger.API,
                **data,
            )
        optimization_enqueue(run)
        return _accepted(run, "strategies-optimization-detail", run_id=run.pk)


class OptimizationDetailView(APIView):
    @extend_schema(responses=OptimizationSerializer)
    def get(self, request: Request, run_id: str) -> Response:
        try:
            run = selectors.optimization_list().get(pk=int(run_id))
        except OptimizationRun.DoesNotExist:
            raise Http404 from None
        return Response(OptimizationSerializer(run).data)


class GenerateView(APIView):
    """Ask the configured LLM (or the offline templates) for new strategies on a market (202; poll the
    URL): candidates are validated, backtested on a training and a later holdout window, and those
    beating buy-and-hold there are kept as drafts."""

    @extend_schema(request=GenerationRequestSerializer, responses={202: GenerationAcceptedSerializer})
    def post(self, request: Request) -> Response:
        data = validated(GenerationRequestSerializer, request.data)
        with _bad_request():
            run = generation_create(**data, trigger=JobTrigger.API)
        job_dispatch_on_commit(generate_run, run)
        body = {
            "id": run.pk,
            "status": run.status,
            "url": reverse("strategies-generation-detail", kwargs={"run_id": run.pk}),
        }
        return Response(GenerationAcceptedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class GenerationDetailView(APIView):
    @extend_schema(responses=GenerationSerializer)
    def get(self, request: Request, run_id: str) -> Response:
        try:
            run = selectors.generation_run_list().get(pk=int(run_id))
        except GenerationRun.DoesNotExist:
            raise Http404 from None
        return Response(GenerationSerializer(run).data)


class UpdateRunListView(generics.ListAPIView):
    """The daily strategy updates, newest date first (``?status=``), with their summaries."""

    serializer_class = UpdateRunSerializer
    filterset_fields = ("status",)

    def get_queryset(self) -> QuerySet[StrategyUpdateRun]:
        return selectors.update_run_list()


class UpdateRunDetailView(generics.RetrieveAPIView):
    """One daily update with each strategy's item (its outcome) and every decision it recorded."""

    serializer_class = UpdateRunDetailSerializer
    lookup_url_kwarg = "run_id"

    def get_queryset(self) -> QuerySet[StrategyUpdateRun]:
        return selectors.update_run_list().prefetch_related("items__strategy", "decisions__strategy")
