"""Training endpoints of the brief: train, list, show, evaluate, cancel; the newest-candle prediction;
staff's promotion through the holdout gate; and the 6-hourly retraining runs with their promotion
decisions.

Models are looked up among those the requesting user may see (``apps.core.ownership``): their own
and the scheduled training's; another user's is answered as a missing one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import ownership
from apps.core.api import error_body, validated
from apps.core.dispatch import job_dispatch_on_commit
from apps.core.job_wait import WAIT_PARAMETER, job_awaited
from apps.core.jobs import job_cancel
from apps.core.symbols import normalise_symbol
from apps.training import selectors
from apps.training.api.serializers import (
    EvaluateRequestSerializer,
    EvaluationSerializer,
    MLModelDetailSerializer,
    MLModelSerializer,
    PredictionSerializer,
    PromotionDecisionSerializer,
    TrainAcceptedSerializer,
    TrainingRunSerializer,
    TrainRequestSerializer,
    model_url,
)
from apps.training.errors import TrainingInputError
from apps.training.models import MODEL_TYPE_CHOICES, MLModel, Stage, TrainingRun
from apps.training.services.model_training import model_train_request
from apps.training.services.promotion import model_promote_if_better
from workers.training import model_train


@contextmanager
def _field_errors() -> Iterator[None]:
    """A TrainingInputError from a service or selector becomes a 400 naming its field."""
    try:
        yield
    except TrainingInputError as error:
        raise ValidationError({name: [problem] for name, problem in error.fields.items()}) from None


class TrainView(APIView):
    """Register a model (yours) and train it on the training queue: 202 with the URL to poll. Needs the
    training.run_training permission (the researchers group; staff may): 403 otherwise. 429 when
    your queued jobs reach API_MAX_QUEUED_JOBS_PER_USER."""

    @extend_schema(request=TrainRequestSerializer, responses={202: TrainAcceptedSerializer})
    def post(self, request: Request) -> Response:
        data = validated(TrainRequestSerializer, request.data)
        model = model_train_request(spec=data["spec"], owner=request.user)
        job_dispatch_on_commit(model_train, model)
        body = {"model_id": model.model_id, "status": model.stage, "url": model_url(model)}
        return Response(TrainAcceptedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class ModelFilter(filters.FilterSet):
    symbol = filters.CharFilter(method="filter_symbol", help_text="BTCUSDT or BTC/USDT")
    model_type = filters.ChoiceFilter(choices=MODEL_TYPE_CHOICES)
    status = filters.ChoiceFilter(field_name="stage", choices=Stage.choices)

    class Meta:
        model = MLModel
        fields = ("symbol", "timeframe", "model_type", "status")

    def filter_symbol(self, queryset: QuerySet[MLModel], name: str, value: str) -> QuerySet[MLModel]:
        return queryset.filter(symbol=normalise_symbol(value))


class ModelListView(generics.ListAPIView):
    """The models you may see (yours and the system's), newest first:
    ``?symbol=BTCUSDT&timeframe=1h&model_type=&status=&limit=10``."""

    serializer_class = MLModelSerializer
    filterset_class = ModelFilter

    def get_queryset(self) -> QuerySet[MLModel]:
        return selectors.models_visible(user=self.request.user)


class ModelDetailView(APIView):
    @extend_schema(parameters=[WAIT_PARAMETER], responses=MLModelDetailSerializer)
    def get(self, request: Request, model_id: str) -> Response:
        models = selectors.models_visible(user=request.user).prefetch_related("promotion_decisions")
        model = job_awaited(request, lambda: get_object_or_404(models, model_id=model_id))
        return Response(MLModelDetailSerializer(model).data)


class ModelCancelView(APIView):
    """Cancel a model's pending or running training (yours; staff: any); the model fails with it.
    409 once its training has ended."""

    @extend_schema(request=None, responses=MLModelSerializer)
    def post(self, request: Request, model_id: str) -> Response:
        model = get_object_or_404(selectors.models_visible(user=request.user), model_id=model_id)
        model = job_cancel(job=model, by=request.user, what=f"model {model.model_id}")
        return Response(MLModelSerializer(model).data)


_REFUSED = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "enum": ["not_promoted"]},
                "message": {"type": "string", "description": "The gate's reason"},
                "fields": {
                    "type": "object",
                    "properties": {"decision": {"$ref": "#/components/schemas/PromotionDecision"}},
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}


class ModelPromoteView(APIView):
    """Staff only (403 for others): promote a candidate through the gate of the 6-hourly run. It is
    compared with its series' champion on the holdout neither saw: a one-sided paired test of their
    per-bar scores must give at most ``TRAINING_PROMOTION_MAX_P_VALUE``, and a price or return model's
    deflated Sharpe ratio must reach ``STRATEGY_MIN_DEFLATED_SHARPE`` (with no champion: that, skill
    and beating buy-and-hold); a degenerate model never passes. The decision is stored either way,
    naming you as its actor. 200: the model, now champion; 409
    (``not_promoted``): refused, the stored decision with the gate's numbers in ``fields.decision``;
    400: the model is not a candidate."""

    permission_classes = (IsAdminUser,)

    @extend_schema(
        request=None,
        responses={
            200: MLModelDetailSerializer,
            409: OpenApiResponse(_REFUSED, description="Refused by the gate, with its numbers"),
        },
    )
    def post(self, request: Request, model_id: str) -> Response:
        model = get_object_or_404(MLModel.objects.select_related("instrument"), model_id=model_id)
        with _field_errors():
            decision = model_promote_if_better(candidate=model, actor=ownership.actor_name(request.user))
        if not decision.promoted:
            decided = {"decision": PromotionDecisionSerializer(decision).data}
            return Response(
                error_body("not_promoted", decision.reason, decided), status=status.HTTP_409_CONFLICT
            )
        model = MLModel.objects.prefetch_related("promotion_decisions").get(pk=model.pk)
        return Response(MLModelDetailSerializer(model).data)


class EvaluateView(APIView):
    """Metrics over the most recent ``evaluation_period`` days the model never saw."""

    @extend_schema(request=EvaluateRequestSerializer, responses=EvaluationSerializer)
    def post(self, request: Request) -> Response:
        data = validated(EvaluateRequestSerializer, request.data, context={"user": request.user})
        with _field_errors():
            evaluation = selectors.model_evaluation(
                model=data["model_id"],
                evaluation_period_days=data["evaluation_period"],
            )
        return Response(EvaluationSerializer(evaluation).data)


class PredictView(APIView):
    """The model's prediction at the close of the newest stored candle."""

    @extend_schema(responses=PredictionSerializer)
    def get(self, request: Request, model_id: str) -> Response:
        model = get_object_or_404(selectors.models_visible(user=request.user), model_id=model_id)
        with _field_errors():
            prediction = selectors.model_prediction(model=model)
        return Response(PredictionSerializer(prediction).data)


class TrainingRunListView(generics.ListAPIView):
    """The 6-hourly retraining runs, newest slot first (``?status=``): each report lists what was trained
    per instrument, timeframe and model type, and whether it was promoted, with the reason."""

    serializer_class = TrainingRunSerializer
    filterset_fields = ("status",)

    def get_queryset(self) -> QuerySet[TrainingRun]:
        return selectors.training_run_list()


class TrainingRunDetailView(generics.RetrieveAPIView):
    serializer_class = TrainingRunSerializer
    lookup_url_kwarg = "run_id"

    def get_queryset(self) -> QuerySet[TrainingRun]:
        return selectors.training_run_list()
