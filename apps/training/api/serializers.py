"""Input and output shapes of the training API."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.training import selectors
from apps.training.errors import TrainingInputError
from apps.training.models import MLModel, PromotionDecision, TrainingRun
from apps.training.services.model_training import training_spec_build

MAX_EVALUATION_DAYS = 3650


class TrainRequestSerializer(serializers.Serializer):
    """The brief's training request; ``horizon``, ``hyperparameters`` and ``exchange`` are optional."""

    symbol = serializers.CharField(max_length=40)
    exchange = serializers.CharField(max_length=32, required=False)
    timeframe = serializers.CharField(max_length=8)
    model_type = serializers.CharField(max_length=40)
    lookback_period = serializers.IntegerField(help_text="Bars of history to train on")
    horizon = serializers.IntegerField(required=False, help_text="Bars ahead to predict (default: settings)")
    hyperparameters = serializers.DictField(required=False, help_text="xgboost knobs, e.g. max_depth")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["spec"] = training_spec_build(**attrs)
        except TrainingInputError as error:
            raise serializers.ValidationError({k: [v] for k, v in error.fields.items()}) from None
        return attrs


class TrainAcceptedSerializer(serializers.Serializer):
    model_id = serializers.CharField()
    status = serializers.CharField()
    url = serializers.CharField(help_text="Poll this URL until status is candidate (trained) or failed.")


def model_url(model: MLModel) -> str:
    return reverse("training-model-detail", kwargs={"model_id": model.model_id})


class MLModelSerializer(serializers.ModelSerializer):
    """A registry entry; ``status`` is the registry stage, ``job_status`` the training job's;
    ``degenerate`` (with ``degenerate_reasons``) marks a model useless on its test split, which is
    never promoted; ``robustness`` holds the Sharpe tests of its holdout signal returns, deflated by
    its model family's trials (empty for volatility models)."""

    exchange = serializers.CharField(source="instrument.exchange")
    status = serializers.CharField(source="stage")
    job_status = serializers.CharField(source="status")
    owner = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="The user who trained it; null: the system"
    )
    feature_set = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    degenerate_reasons = serializers.SerializerMethodField()

    class Meta:
        model = MLModel
        fields = (
            "model_id", "symbol", "exchange", "timeframe", "model_type", "horizon", "status", "job_status",
            "owner", "progress", "error", "feature_set", "hyperparameters", "lookback_period", "train_start",
            "train_end", "seen_until", "threshold", "metrics", "degenerate", "degenerate_reasons",
            "robustness", "created_at", "finished_at", "promoted_at", "url",
        )  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_degenerate_reasons(self, model: MLModel) -> list[str]:
        return list(model.degenerate_reasons)

    def get_feature_set(self, model: MLModel) -> dict[str, Any]:
        return {"name": model.feature_set.get("name"), "version": model.feature_set.get("version")}

    def get_url(self, model: MLModel) -> str:
        return model_url(model)


class PromotionDecisionSerializer(serializers.ModelSerializer):
    """A promotion decision: the paired test's ``p_value`` and ``mean_difference``, the candidate's
    ``deflated_sharpe``, and in ``evidence`` every number with its threshold."""

    candidate = serializers.CharField(source="candidate.model_id")
    champion = serializers.CharField(source="champion.model_id", allow_null=True, default=None)

    class Meta:
        model = PromotionDecision
        fields = (
            "candidate", "champion", "metric", "candidate_value", "champion_value", "holdout_start",
            "holdout_end", "holdout_rows", "p_value", "mean_difference", "deflated_sharpe", "evidence",
            "promoted", "reason", "actor", "created_at",
        )  # fmt: skip
        read_only_fields = fields


class MLModelDetailSerializer(MLModelSerializer):
    """Everything stored with a model: the full feature set, windows, importances and decisions."""

    feature_set = serializers.JSONField()
    promotion_decisions = PromotionDecisionSerializer(many=True, read_only=True)

    class Meta(MLModelSerializer.Meta):
        fields = (
            *MLModelSerializer.Meta.fields,
            "windows", "feature_importances", "best_iteration", "artifact_sha256", "promotion_decisions",
        )  # fmt: skip
        read_only_fields = fields


class EvaluateRequestSerializer(serializers.Serializer):
    """A model the requesting user (the context's ``user``) may see: another user's is the same 400
    as an unknown id."""

    model_id = serializers.CharField(max_length=120)
    evaluation_period = serializers.FloatField(help_text="Days, counted back from the newest candle")

    def validate_model_id(self, value: str) -> MLModel:
        try:
            return selectors.model_get(model_id=value, user=self.context["user"])
        except MLModel.DoesNotExist:
            raise serializers.ValidationError(f"no model {value!r}") from None

    def validate_evaluation_period(self, value: float) -> float:
        if not 0 < value <= MAX_EVALUATION_DAYS:
            raise serializers.ValidationError(
                f"evaluation_period must be a positive number of days, at most {MAX_EVALUATION_DAYS}"
            )
        return value


class EvaluationSerializer(serializers.Serializer):
    model_id = serializers.CharField(source="model.model_id")
    evaluation_period = serializers.FloatField()
    seen_until = serializers.DateTimeField(source="model.seen_until")
    requested_start = serializers.DateTimeField()
    start = serializers.DateTimeField(help_text="First evaluated bar: after seen_until, within the period")
    end = serializers.DateTimeField()
    rows = serializers.IntegerField(help_text="Bars whose outcome is known")
    metrics = serializers.DictField()


class PredictionSerializer(serializers.Serializer):
    model_id = serializers.CharField(source="model.model_id")
    symbol = serializers.CharField(source="model.symbol")
    timeframe = serializers.CharField(source="model.timeframe")
    model_type = serializers.CharField(source="model.model_type")
    horizon = serializers.IntegerField(source="model.horizon")
    time = serializers.DateTimeField(help_text="Open time of the candle predicted from (its close)")
    value = serializers.FloatField(help_text="Probability of an up-move, or the predicted return/volatility")
    threshold = serializers.FloatField(source="model.threshold", allow_null=True)
    signal = serializers.BooleanField(allow_null=True, help_text="value passes the threshold")


class TrainingRunSerializer(serializers.ModelSerializer):
    """A 6-hourly retraining: per instrument, timeframe and model type, what was trained and whether it
    was promoted, with the reason."""

    class Meta:
        model = TrainingRun
        fields = (
            "id", "slot", "status", "progress", "report", "error", "attempts", "created_at", "started_at",
            "finished_at",
        )  # fmt: skip
        read_only_fields = fields
