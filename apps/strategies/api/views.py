"""Strategy endpoints: strategies, backtests, optimisations, generation, versions and decisions.

Every object is looked up among those the requesting user may see (``apps.core.ownership``):
another user's is answered as a missing one; the services refuse changes the user may not make.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

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
from apps.core.job_wait import WAIT_PARAMETER, job_awaited
from apps.core.jobs import job_cancel
from apps.core.models import Job, JobStatus
from apps.core.symbols import normalise_symbol
from apps.strategies import selectors
from apps.strategies.api.serializers import (
    AcceptedSerializer,
    BacktestListSerializer,
    BacktestRequestSerializer,
    BacktestSerializer,
    DecisionSerializer,
    GenerationAcceptedSerializer,
    GenerationListSerializer,
    GenerationRequestSerializer,
    GenerationSerializer,
    OptimizationListSerializer,
    OptimizationRequestSerializer,
    OptimizationSerializer,
    StrategyCreateSerializer,
    StrategyDeletedSerializer,
    StrategySerializer,
    StrategyUpdateSerializer,
    TrialSerializer,
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
    Trial,
)
from apps.strategies.services.backtests import backtest_create
from apps.strategies.services.generation import generation_create
from apps.strategies.services.optimizations import optimization_cancel, optimization_create
from apps.strategies.services.strategies import strategy_create, strategy_delete, strategy_update
from workers.strategies import backtest_run, generate_run, optimization_enqueue


@contextmanager
def _bad_request() -> Iterator[None]:
    """A service's StrategyInputError is the client's 400; its fields are the error's fields."""
    try:
        yield
    except StrategyInputError as error:
        raise ValidationError(error.fields) from None


J = TypeVar("J", bound=Job)


def _strategy(request: Request, strategy_id: str) -> Strategy:
    try:
        return selectors.strategy_get(strategy_id=strategy_id, user=request.user)
    except Strategy.DoesNotExist:
        raise Http404 from None


def _visible(queryset: QuerySet[J], pk: str) -> J:
    """The job ``pk`` of a queryset of visible ones, or a 404."""
    job = queryset.filter(pk=int(pk)).first()
    if job is None:
        raise Http404
    return job


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
        return selectors.strategies_visible(user=self.request.user)

    @extend_schema(request=StrategyCreateSerializer, responses={201: StrategySerializer})
    def post(self, request: Request) -> Response:
        with _bad_request():
            strategy = strategy_create(
                **validated(StrategyCreateSerializer, request.data), owner=request.user
            )
        return Response(StrategySerializer(strategy).data, status=status.HTTP_201_CREATED)


class StrategyDetailView(APIView):
    """GET one strategy; PATCH to activate, pause, retire or edit it (a new version); DELETE it.
    Changes are the owner's (staff: any); a strategy the system made, or one a live account trades,
    is changed by staff only (403)."""

    @extend_schema(responses=StrategySerializer)
    def get(self, request: Request, strategy_id: str) -> Response:
        return Response(StrategySerializer(_strategy(request, strategy_id)).data)

    @extend_schema(request=StrategyUpdateSerializer, responses=StrategySerializer)
    def patch(self, request: Request, strategy_id: str) -> Response:
        strategy = _strategy(request, strategy_id)
        changes = validated(StrategyUpdateSerializer, request.data)
        with _bad_request():
            strategy = strategy_update(strategy=strategy, by=request.user, **changes)
        return Response(StrategySerializer(strategy).data)

    @extend_schema(responses={204: None, 200: StrategyDeletedSerializer})
    def delete(self, request: Request, strategy_id: str) -> Response:
        """A draft with no backtests, optimisations or decisions is deleted (204); any other strategy
        is retired and kept with its history (200, saying so)."""
        strategy = _strategy(request, strategy_id)
        if strategy_delete(strategy=strategy, by=request.user):
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
        return selectors.version_list(strategy=_strategy(self.request, self.kwargs["strategy_id"]))


class DecisionListView(generics.ListAPIView):
    """Everything decided about a strategy (by users and jobs, each named as its ``actor``), newest first."""

    serializer_class = DecisionSerializer
    filterset_fields = ("kind",)

    def get_queryset(self) -> QuerySet[StrategyDecision]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no strategy_id
            return StrategyDecision.objects.none()
        return selectors.decision_list(strategy=_strategy(self.request, self.kwargs["strategy_id"]))


class TrialListView(generics.ListAPIView):
    """The trial ledger of a strategy's research family (its market, timeframe and lineage: the
    strategy with all its versions, or for a generated strategy every generation candidate of its
    market), newest first (``?source=``). Another user's trials are counted in the family's
    deflated Sharpe ratios but listed only to their owner and staff."""

    serializer_class = TrialSerializer
    filterset_fields = ("source",)

    def get_queryset(self) -> QuerySet[Trial]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no strategy_id
            return Trial.objects.none()
        strategy = _strategy(self.request, self.kwargs["strategy_id"])
        family = selectors.strategy_family(strategy=strategy)
        return selectors.family_trials_visible(family=family, user=self.request.user)


class JobFilter(filters.FilterSet):
    strategy_id = filters.CharFilter(field_name="strategy__strategy_id")
    status = filters.ChoiceFilter(choices=JobStatus.choices)
    trigger = filters.ChoiceFilter(choices=JobTrigger.choices)


class BacktestFilter(JobFilter):
    class Meta:
        model = Backtest
        fields = ("strategy_id", "status", "trigger")


class OptimizationFilter(JobFilter):
    class Meta:
        model = OptimizationRun
        fields = ("strategy_id", "status", "trigger")


class BacktestListView(generics.ListAPIView):
    """The backtests you may see (yours, and the system's of strategies you may see), newest first
    (``?strategy_id=&status=&trigger=``)."""

    serializer_class = BacktestListSerializer
    filterset_class = BacktestFilter

    def get_queryset(self) -> QuerySet[Backtest]:
        return selectors.backtests_visible(user=self.request.user)


class BacktestCreateView(APIView):
    """Backtest the current version of a strategy you may see on a window of stored candles (202; poll
    the URL); the backtest is yours. 429 when your queued jobs reach API_MAX_QUEUED_JOBS_PER_USER."""

    @extend_schema(request=BacktestRequestSerializer, responses={202: AcceptedSerializer})
    def post(self, request: Request) -> Response:
        data = validated(BacktestRequestSerializer, request.data, context={"user": request.user})
        with _bad_request():
            backtest = backtest_create(
                strategy=data["strategy_id"],
                start=data["start_date"],
                end=data["end_date"],
                initial_capital=data["initial_capital"],
                commission=data["commission"],
                slippage=data["slippage"],
                trigger=JobTrigger.API,
                owner=request.user,
            )
        job_dispatch_on_commit(backtest_run, backtest)
        return _accepted(backtest, "strategies-backtest-detail", backtest_id=backtest.pk)


class BacktestDetailView(APIView):
    @extend_schema(parameters=[WAIT_PARAMETER], responses=BacktestSerializer)
    def get(self, request: Request, backtest_id: str) -> Response:
        backtests = selectors.backtests_visible(user=request.user)
        backtest = job_awaited(request, lambda: _visible(backtests, backtest_id))
        return Response(BacktestSerializer(backtest).data)


class BacktestCancelView(APIView):
    """Cancel a pending or running backtest of yours (staff: any); 409 once it has ended."""

    @extend_schema(request=None, responses=BacktestSerializer)
    def post(self, request: Request, backtest_id: str) -> Response:
        backtest = _visible(selectors.backtests_visible(user=request.user), backtest_id)
        backtest = job_cancel(job=backtest, by=request.user, what=f"backtest {backtest.pk}")
        return Response(BacktestSerializer(backtest).data)


class OptimizationListView(generics.ListAPIView):
    """The optimisations you may see (yours, and the system's of strategies you may see), newest
    first (``?strategy_id=&status=&trigger=``)."""

    serializer_class = OptimizationListSerializer
    filterset_class = OptimizationFilter

    def get_queryset(self) -> QuerySet[OptimizationRun]:
        return selectors.optimizations_visible(user=self.request.user)


class OptimizeView(APIView):
    """Search the parameters of a strategy you may see walk-forward, in chunks shared by the workers
    (202); the run is yours. 429 when your queued jobs reach API_MAX_QUEUED_JOBS_PER_USER."""

    @extend_schema(request=OptimizationRequestSerializer, responses={202: AcceptedSerializer})
    def post(self, request: Request) -> Response:
        data = validated(OptimizationRequestSerializer, request.data, context={"user": request.user})
        with _bad_request():
            run = optimization_create(
                strategy=data.pop("strategy_id"),
                start=data.pop("start_date", None),
                end=data.pop("end_date", None),
                trigger=JobTrigger.API,
                owner=request.user,
                **data,
            )
        optimization_enqueue(run)
        return _accepted(run, "strategies-optimization-detail", run_id=run.pk)


class OptimizationDetailView(APIView):
    @extend_schema(parameters=[WAIT_PARAMETER], responses=OptimizationSerializer)
    def get(self, request: Request, run_id: str) -> Response:
        runs = selectors.optimizations_visible(user=request.user)
        run = job_awaited(request, lambda: _visible(runs, run_id))
        return Response(OptimizationSerializer(run).data)


class OptimizationCancelView(APIView):
    """Cancel a pending or running optimisation of yours (staff: any) with its pending chunks; 409
    once it has ended."""

    @extend_schema(request=None, responses=OptimizationSerializer)
    def post(self, request: Request, run_id: str) -> Response:
        run = _visible(selectors.optimizations_visible(user=request.user), run_id)
        return Response(OptimizationSerializer(optimization_cancel(run=run, by=request.user)).data)


class GenerationFilter(filters.FilterSet):
    symbol = filters.CharFilter(method="filter_symbol", help_text="BTCUSDT or BTC/USDT")
    status = filters.ChoiceFilter(choices=JobStatus.choices)
    trigger = filters.ChoiceFilter(choices=JobTrigger.choices)

    class Meta:
        model = GenerationRun
        fields = ("symbol", "timeframe", "status", "trigger")

    def filter_symbol(
        self, queryset: QuerySet[GenerationRun], name: str, value: str
    ) -> QuerySet[GenerationRun]:
        return queryset.filter(instrument__symbol=normalise_symbol(value))


class GenerationListView(generics.ListAPIView):
    """The generation runs you may see (yours and the system's), newest first
    (``?symbol=&timeframe=&status=&trigger=``)."""

    serializer_class = GenerationListSerializer
    filterset_class = GenerationFilter

    def get_queryset(self) -> QuerySet[GenerationRun]:
        return selectors.generations_visible(user=self.request.user)


class GenerateView(APIView):
    """Ask the configured LLM (or the offline templates) for new strategies on a market (202; poll the
    URL): candidates are validated, backtested on a training and a later holdout window, and those
    beating buy-and-hold there are kept as your drafts. Needs the strategies.run_generation
    permission (the researchers group; staff may): 403 otherwise. 429 when your queued jobs reach
    API_MAX_QUEUED_JOBS_PER_USER."""

    @extend_schema(request=GenerationRequestSerializer, responses={202: GenerationAcceptedSerializer})
    def post(self, request: Request) -> Response:
        data = validated(GenerationRequestSerializer, request.data)
        with _bad_request():
            run = generation_create(**data, trigger=JobTrigger.API, owner=request.user)
        job_dispatch_on_commit(generate_run, run)
        body = {
            "id": run.pk,
            "status": run.status,
            "url": reverse("strategies-generation-detail", kwargs={"run_id": run.pk}),
        }
        return Response(GenerationAcceptedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class GenerationDetailView(APIView):
    @extend_schema(parameters=[WAIT_PARAMETER], responses=GenerationSerializer)
    def get(self, request: Request, run_id: str) -> Response:
        runs = selectors.generations_visible(user=request.user)
        run = job_awaited(request, lambda: _visible(runs, run_id))
        return Response(GenerationSerializer(run).data)


class GenerationCancelView(APIView):
    """Cancel a pending or running generation of yours (staff: any); 409 once it has ended. A run
    already asking the LLM finishes that call; its outcome is discarded."""

    @extend_schema(request=None, responses=GenerationSerializer)
    def post(self, request: Request, run_id: str) -> Response:
        run = _visible(selectors.generations_visible(user=request.user), run_id)
        run = job_cancel(job=run, by=request.user, what=f"generation {run.pk}")
        return Response(GenerationSerializer(run).data)


def _update_context(request: Request, context: dict[str, Any]) -> dict[str, Any]:
    if not request.user.is_staff:
        visible = selectors.strategies_visible(user=request.user)
        context["strategy_ids"] = set(visible.values_list("strategy_id", flat=True))
    return context


class UpdateRunListView(generics.ListAPIView):
    """The daily strategy updates, newest date first (``?status=``), with their summaries (failures
    of the strategies you may see)."""

    serializer_class = UpdateRunSerializer
    filterset_fields = ("status",)

    def get_queryset(self) -> QuerySet[StrategyUpdateRun]:
        return selectors.update_run_list()

    def get_serializer_context(self) -> dict[str, Any]:
        return _update_context(self.request, super().get_serializer_context())


class UpdateRunDetailView(generics.RetrieveAPIView):
    """One daily update with each strategy's item (its outcome) and every decision it recorded, for
    the strategies you may see."""

    serializer_class = UpdateRunDetailSerializer
    lookup_url_kwarg = "run_id"

    def get_queryset(self) -> QuerySet[StrategyUpdateRun]:
        return selectors.update_run_detail_list(user=self.request.user)

    def get_serializer_context(self) -> dict[str, Any]:
        return _update_context(self.request, super().get_serializer_context())
