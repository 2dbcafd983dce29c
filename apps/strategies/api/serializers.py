"""Input and output shapes of the strategies API.

Input serializers check shapes and look names up; the strategy document itself (rules, parameters,
indicators) and the windows are checked by the services, whose StrategyInputError becomes a 400.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.urls import reverse
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.models import JobStatus
from apps.llm.models import OFFLINE
from apps.market import selectors as market
from apps.market.domain.candles import TIMEFRAMES
from apps.strategies import documents, selectors
from apps.strategies.engine.optimize import MAX_TRIALS, OBJECTIVES
from apps.strategies.generation.schema import MAX_CANDIDATES
from apps.strategies.models import (
    Backtest,
    GenerationCandidate,
    GenerationRun,
    JobTrigger,
    OptimizationMethod,
    OptimizationRun,
    Strategy,
    StrategyDecision,
    StrategySource,
    StrategyStatus,
    StrategyType,
    StrategyUpdateItem,
    StrategyUpdateRun,
    StrategyVersion,
    Trial,
    TrialSource,
)
from apps.strategies.services.backtests import DEFAULT_CAPITAL, DEFAULT_COMMISSION

CREATE_STATUSES = (StrategyStatus.DRAFT, StrategyStatus.ACTIVE, StrategyStatus.PAUSED)


class InlineChoiceField(serializers.ChoiceField):
    """A choice field the API schema shows as a string listing its choices, not as an enum component:
    other apps name their own, different ``status`` and ``trigger`` choices alike, and enum components
    named after the field would clash (ENUM_NAME_OVERRIDES in the settings could name them instead)."""


class InlineChoiceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = InlineChoiceField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        return {"type": "string", "description": f"one of: {', '.join(self.target.choices)}"}


def owner_field() -> serializers.SlugRelatedField:
    return serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="The user who made it; null: made by the system"
    )


@extend_schema_field(OpenApiTypes.STR)
class StrategyField(serializers.Field):
    """A ``strategy_id`` the requesting user (the serializer context's ``user``) may see, validated
    into its Strategy; an unknown id, or another user's, is the same 400 naming the field."""

    def to_internal_value(self, data: Any) -> Strategy:
        if not isinstance(data, str) or not data.strip():
            raise serializers.ValidationError("give a strategy_id such as strategy_RSI_BTCUSD_20240101120000")
        try:
            return selectors.strategy_get(strategy_id=data.strip(), user=self.context["user"])
        except Strategy.DoesNotExist:
            raise serializers.ValidationError(f"unknown strategy {data!r}") from None

    def to_representation(self, value: Strategy) -> str:
        return value.strategy_id


class DocumentSerializer(serializers.Serializer):
    """The brief's strategy document; rules are checked in full by the service."""

    parameters = serializers.DictField(default=dict)
    indicators = serializers.ListField(child=serializers.JSONField(), default=list)
    rules = serializers.ListField(child=serializers.JSONField(), allow_empty=True)


class StrategyCreateSerializer(DocumentSerializer):
    name = serializers.CharField(max_length=100)
    type = serializers.ChoiceField(choices=StrategyType.choices)
    symbol = serializers.CharField(max_length=40)
    exchange = serializers.CharField(max_length=32, required=False)
    timeframe = serializers.ChoiceField(choices=list(TIMEFRAMES))
    status = InlineChoiceField(choices=CREATE_STATUSES, default=StrategyStatus.DRAFT)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["instrument"] = market.instrument_resolve(
                symbol=attrs.pop("symbol"), exchange=attrs.pop("exchange", None)
            )
        except market.InstrumentNotFound as error:
            raise serializers.ValidationError({"symbol": [str(error)]}) from None
        return attrs


class StrategyUpdateSerializer(serializers.Serializer):
    """PATCH: any of these; changed parameters, indicators or rules make a new version."""

    name = serializers.CharField(max_length=100, required=False)
    type = serializers.ChoiceField(choices=StrategyType.choices, required=False)
    status = InlineChoiceField(choices=StrategyStatus.choices, required=False)
    parameters = serializers.DictField(required=False)
    indicators = serializers.ListField(child=serializers.JSONField(), required=False)
    rules = serializers.ListField(child=serializers.JSONField(), required=False)
    reason = serializers.CharField(max_length=300, required=False, default="")


class DocumentWarningSerializer(serializers.Serializer):
    """Something a valid strategy document holds that it probably does not mean; it refuses nothing."""

    code = serializers.CharField(help_text=f"{documents.UNUSED_PARAMETER}: no rule reads the parameter")
    parameter = serializers.CharField()
    message = serializers.CharField()


def _warnings(parameters: object, rules: object) -> list[dict[str, str]]:
    found = documents.document_warnings(parameters=parameters, rules=rules)
    return DocumentWarningSerializer(found, many=True).data


class StrategySerializer(serializers.ModelSerializer):
    status = InlineChoiceField(choices=StrategyStatus.choices, read_only=True)
    symbol = serializers.CharField(source="instrument.symbol")
    exchange = serializers.CharField(source="instrument.exchange")
    version = serializers.IntegerField(source="current_version.number")
    parameters = serializers.JSONField(source="current_version.parameters")
    indicators = serializers.JSONField(source="current_version.indicators")
    rules = serializers.JSONField(source="current_version.rules")
    warnings = serializers.SerializerMethodField(
        help_text="What the current version holds that it probably does not mean, e.g. a parameter no "
        "rule reads; empty when none"
    )
    owner = owner_field()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Strategy
        fields = (
            "strategy_id", "name", "type", "symbol", "exchange", "timeframe", "status", "source", "owner",
            "version", "parameters", "indicators", "rules", "warnings", "created_at", "updated_at", "url",
        )  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(DocumentWarningSerializer(many=True))
    def get_warnings(self, strategy: Strategy) -> list[dict[str, str]]:
        version = strategy.current_version
        return _warnings(version.parameters, version.rules)

    def get_url(self, strategy: Strategy) -> str:
        return reverse("strategies-detail", kwargs={"strategy_id": strategy.strategy_id})


class StrategyDeletedSerializer(serializers.Serializer):
    strategy_id = serializers.CharField()
    deleted = serializers.BooleanField()
    status = serializers.CharField()
    message = serializers.CharField()


class VersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = StrategyVersion
        fields = ("number", "parameters", "indicators", "rules", "source", "reason", "created_at")
        read_only_fields = fields


class DecisionSerializer(serializers.ModelSerializer):
    strategy_id = serializers.CharField(source="strategy.strategy_id")

    class Meta:
        model = StrategyDecision
        fields = (
            "id", "strategy_id", "kind", "actor", "reason", "numbers", "update_run", "backtest",
            "optimization", "created_at",
        )  # fmt: skip
        read_only_fields = fields


class CostsSerializer(serializers.Serializer):
    initial_capital = serializers.DecimalField(
        max_digits=20, decimal_places=2, min_value=Decimal("0.01"), default=DEFAULT_CAPITAL
    )
    commission = serializers.FloatField(min_value=0.0, max_value=0.5, default=DEFAULT_COMMISSION)
    slippage = serializers.FloatField(min_value=0.0, max_value=0.5, default=0.0)


class BacktestRequestSerializer(CostsSerializer):
    """The brief's body: ``strategy_id``, ``start_date``, ``end_date``, ``initial_capital``."""

    strategy_id = StrategyField()
    start_date = serializers.DateTimeField()
    end_date = serializers.DateTimeField()


class AcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    strategy_id = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField(help_text="Poll this URL until status is completed or failed.")


class JobSerializer(serializers.ModelSerializer):
    """Fields of every strategy job; the results appear once it is completed."""

    strategy_id = serializers.CharField(source="strategy.strategy_id")
    version = serializers.IntegerField(source="version.number")
    status = InlineChoiceField(choices=JobStatus.choices, read_only=True)
    trigger = InlineChoiceField(choices=JobTrigger.choices, read_only=True)
    owner = owner_field()
    results: tuple[str, ...] = ()

    def to_representation(self, instance: Backtest | OptimizationRun) -> dict[str, Any]:
        data = super().to_representation(instance)
        if instance.status != JobStatus.COMPLETED:
            for name in self.results:
                data.pop(name)
        return data


class BacktestSerializer(JobSerializer):
    results = ("metrics", "robustness", "trades", "equity_curve", "benchmark")

    class Meta:
        model = Backtest
        fields = (
            "id", "strategy_id", "version", "trigger", "owner", "status", "progress", "error", "start", "end",
            "initial_capital", "commission", "slippage", "bars", "created_at", "started_at", "finished_at",
            "metrics", "robustness", "trades", "equity_curve", "benchmark",
        )  # fmt: skip
        read_only_fields = fields


class BacktestListSerializer(BacktestSerializer):
    """A backtest in a list: its metrics without the robustness block, trades and curves (its URL
    has them)."""

    results = ("metrics",)
    url = serializers.SerializerMethodField()

    class Meta(BacktestSerializer.Meta):
        fields = (*BacktestSerializer.Meta.fields[:-4], "url")
        read_only_fields = fields

    def get_url(self, backtest: Backtest) -> str:
        return reverse("strategies-backtest-detail", kwargs={"backtest_id": backtest.pk})


class OptimizationRequestSerializer(CostsSerializer):
    strategy_id = StrategyField()
    space = serializers.DictField(
        help_text='{"param": [values]} or {"param": {"min": 10, "max": 20, "step": 2}} '
        '(random: also {"min", "max"})'
    )
    method = serializers.ChoiceField(choices=OptimizationMethod.choices, default=OptimizationMethod.GRID)
    n_trials = serializers.IntegerField(
        min_value=1, max_value=MAX_TRIALS, default=50, help_text="random only"
    )
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, default=0)
    objective = serializers.ChoiceField(choices=list(OBJECTIVES), default="sharpe_ratio")
    folds = serializers.IntegerField(min_value=0, max_value=20, default=3, help_text="0: in-sample only")
    anchored = serializers.BooleanField(default=False)
    start_date = serializers.DateTimeField(required=False, help_text="default: the first stored candle")
    end_date = serializers.DateTimeField(required=False, help_text="default: the last stored candle")


class OptimizationSerializer(JobSerializer):
    results = ("trials", "best_params", "summary", "robustness")

    class Meta:
        model = OptimizationRun
        fields = (
            "id", "strategy_id", "version", "trigger", "owner", "status", "progress", "error", "start", "end",
            "bars", "initial_capital", "commission", "slippage", "space", "method", "n_trials", "seed",
            "objective", "folds", "anchored", "chunks_total", "chunks_done", "created_at", "started_at",
            "finished_at", "best_params", "summary", "robustness", "trials",
        )  # fmt: skip
        read_only_fields = fields


class OptimizationListSerializer(OptimizationSerializer):
    """An optimisation in a list: its outcome without its robustness block and every trial (its URL
    has them)."""

    results = ("best_params", "summary")
    url = serializers.SerializerMethodField()

    class Meta(OptimizationSerializer.Meta):
        fields = (*OptimizationSerializer.Meta.fields[:-2], "url")
        read_only_fields = fields

    def get_url(self, run: OptimizationRun) -> str:
        return reverse("strategies-optimization-detail", kwargs={"run_id": run.pk})


class GenerationRequestSerializer(serializers.Serializer):
    symbol = serializers.CharField(max_length=40)
    exchange = serializers.CharField(max_length=32, required=False)
    timeframe = serializers.ChoiceField(choices=list(TIMEFRAMES))
    count = serializers.IntegerField(min_value=1, max_value=MAX_CANDIDATES, default=3)
    provider = serializers.CharField(
        max_length=16, required=False, help_text="one of LLM_PROVIDERS (offline: the rule templates)"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["instrument"] = market.instrument_resolve(
                symbol=attrs.pop("symbol"), exchange=attrs.pop("exchange", None)
            )
        except market.InstrumentNotFound as error:
            raise serializers.ValidationError({"symbol": [str(error)]}) from None
        return attrs


class GenerationAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField(help_text="Poll this URL until status is completed or failed.")


class CandidateSerializer(serializers.ModelSerializer):
    outcome = InlineChoiceField(choices=["kept", "rejected"], read_only=True)
    strategy_id = serializers.CharField(source="strategy.strategy_id", allow_null=True, default=None)
    proposed_by = serializers.SerializerMethodField(help_text="llm, or template (the offline rule templates)")
    warnings = serializers.SerializerMethodField(
        help_text="What the proposed document holds that it probably does not mean, e.g. a parameter "
        "no rule reads (the candidate is judged all the same)"
    )

    class Meta:
        model = GenerationCandidate
        fields = (
            "index", "name", "outcome", "reason", "proposed_by", "document", "warnings", "train_metrics",
            "holdout_metrics", "holdout_buy_and_hold_pct", "robustness", "strategy_id",
        )  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(DocumentWarningSerializer(many=True))
    def get_warnings(self, candidate: GenerationCandidate) -> list[dict[str, str]]:
        return _warnings(candidate.document.get("parameters"), candidate.document.get("rules"))

    def get_proposed_by(self, candidate: GenerationCandidate) -> str:
        return StrategySource.TEMPLATE if candidate.run.provider_used == OFFLINE else StrategySource.LLM


class GenerationSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol")
    exchange = serializers.CharField(source="instrument.exchange")
    status = InlineChoiceField(choices=JobStatus.choices, read_only=True)
    trigger = InlineChoiceField(choices=JobTrigger.choices, read_only=True)
    owner = owner_field()
    candidates = CandidateSerializer(many=True, read_only=True)
    kept_strategy_ids = serializers.SerializerMethodField()

    class Meta:
        model = GenerationRun
        fields = (
            "id", "symbol", "exchange", "timeframe", "count", "trigger", "owner", "status", "progress",
            "error", "provider_requested", "provider_used", "model", "llm_status", "llm_failures",
            "created_at", "started_at", "finished_at", "summary", "kept_strategy_ids", "candidates",
        )  # fmt: skip
        read_only_fields = fields

    def get_kept_strategy_ids(self, run: GenerationRun) -> list[str]:
        return [c.strategy.strategy_id for c in run.candidates.all() if c.strategy is not None]


class GenerationListSerializer(GenerationSerializer):
    """A generation run in a list: its summary without the candidates' evidence (its URL has it)."""

    url = serializers.SerializerMethodField()

    class Meta(GenerationSerializer.Meta):
        fields = (*GenerationSerializer.Meta.fields[:-1], "url")
        read_only_fields = fields

    def get_url(self, run: GenerationRun) -> str:
        return reverse("strategies-generation-detail", kwargs={"run_id": run.pk})


class UpdateItemSerializer(serializers.ModelSerializer):
    strategy_id = serializers.CharField(source="strategy.strategy_id")
    status = InlineChoiceField(choices=JobStatus.choices, read_only=True)

    class Meta:
        model = StrategyUpdateItem
        fields = ("id", "strategy_id", "status", "outcome", "error", "attempts", "started_at", "finished_at")
        read_only_fields = fields


class UpdateRunSerializer(serializers.ModelSerializer):
    """One daily update: its phase, its summary (outcomes, failures, generation per market). With
    ``strategy_ids`` in the context, the failures are narrowed to those strategies (the user's view)."""

    status = InlineChoiceField(choices=JobStatus.choices, read_only=True)

    class Meta:
        model = StrategyUpdateRun
        fields = (
            "id", "date", "as_of", "phase", "status", "progress", "summary", "error", "created_at",
            "started_at", "finished_at",
        )  # fmt: skip
        read_only_fields = fields

    def to_representation(self, run: StrategyUpdateRun) -> dict[str, Any]:
        data = super().to_representation(run)
        visible = self.context.get("strategy_ids")
        if visible is not None and "failures" in data["summary"]:
            failures = [f for f in data["summary"]["failures"] if f["strategy_id"] in visible]
            data["summary"] = {**data["summary"], "failures": failures}
        return data


class UpdateRunDetailSerializer(UpdateRunSerializer):
    """The update with each strategy's item and every decision it made."""

    items = UpdateItemSerializer(many=True, read_only=True)
    decisions = DecisionSerializer(many=True, read_only=True)

    class Meta(UpdateRunSerializer.Meta):
        fields = (*UpdateRunSerializer.Meta.fields, "items", "decisions")
        read_only_fields = fields


class TrialSerializer(serializers.ModelSerializer):
    source = InlineChoiceField(choices=TrialSource.choices, read_only=True)
    strategy_id = serializers.CharField(source="strategy.strategy_id", allow_null=True, default=None)
    owner = owner_field()

    class Meta:
        model = Trial
        fields = (
            "id", "key", "source", "strategy_id", "owner", "lineage", "timeframe", "parameters",
            "observations", "sharpe", "skewness", "kurtosis", "created_at",
        )  # fmt: skip
        read_only_fields = fields
