"""Admin pages of the training app: the model registry (metrics, importance chart, evaluate/promote/retire),
the 6-hourly runs and the promotion decisions."""

from __future__ import annotations

import json
import math
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.core import ownership
from apps.core.admin import ReadOnlyAdmin, list_time
from apps.training import selectors
from apps.training.errors import ArtifactError, TrainingInputError
from apps.training.models import MLModel, PromotionDecision, TrainingRun
from apps.training.services.promotion import model_promote_if_better, model_retire, promotion_metric

ADMIN_EVALUATION_DAYS = 30
CHART_FEATURES = 30
HEADLINE_METRICS = (
    "accuracy", "roc_auc", "log_loss", "rmse", "directional_accuracy",
    "trading_total_return", "buy_hold_total_return",
)  # fmt: skip


# The robustness block's rows, in the order a reader checks them: (key, label, what it says).
ROBUSTNESS_ROWS = (
    ("observations", "bars", "holdout signal returns the tests read"),
    ("sharpe_per_bar", "Sharpe ratio per bar", "mean / standard deviation, not annualised"),
    ("psr", "probabilistic Sharpe ratio", "probability that the true Sharpe ratio is above 0"),
    ("trials", "trials in the model family", "models of this type trained on this market and timeframe"),
    ("sharpe_variance", "variance of their Sharpe ratios", "per bar"),
    ("expected_max_sharpe", "expected best Sharpe by luck", "of that many trials without skill"),
    ("deflated_sharpe", "deflated Sharpe ratio", "PSR against the expected best by luck"),
    ("min_track_record_bars", "minimum track record", "bars for 95% confidence in a positive Sharpe ratio"),
    ("skewness", "skewness", ""),
    ("kurtosis", "kurtosis", "3 for normal returns"),
)


# Each holdout score beside what a model without skill gets, derived from the same test rows:
# (metric, baseline label, the baseline from the split's metrics, higher is better).
BASELINES: tuple[tuple[str, str, Any, bool], ...] = (
    ("accuracy", "majority class", lambda m: m.get("baseline_accuracy"), True),
    ("balanced_accuracy", "a coin flip", lambda m: 0.5, True),
    ("roc_auc", "a coin flip", lambda m: 0.5, True),
    ("log_loss", "the up-rate as the probability", lambda m: _entropy(m.get("positive_rate")), False),
    ("brier", "the up-rate as the probability", lambda m: _brier(m.get("positive_rate")), False),
    ("rmse", "predicting zero", lambda m: m.get("baseline_rmse"), False),
    ("mae", "predicting zero", lambda m: m.get("baseline_mae"), False),
    ("directional_accuracy", "a coin flip", lambda m: 0.5, True),
    ("trading_total_return", "buy and hold", lambda m: m.get("buy_hold_total_return"), True),
    ("trading_sharpe", "buy and hold", lambda m: m.get("buy_hold_sharpe"), True),
)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "-"


def _entropy(rate: float | None) -> float | None:
    """The log loss of predicting the up-rate for every row of a split with that up-rate."""
    if rate is None or not 0 < rate < 1:
        return None
    return -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))


def _brier(rate: float | None) -> float | None:
    return None if rate is None else rate * (1 - rate)


@admin.register(MLModel)
class MLModelAdmin(ReadOnlyAdmin):
    """A model's row is its training job's record: read-only, never deleted (retire it instead). Its
    stage changes only through the actions, open to users who may change models."""

    list_display = (
        "model_id", "stage", "status", "test_score", "degenerate", "created",
    )  # fmt: skip
    list_filter = ("stage", "degenerate", "model_type", "timeframe", "status", "owner")
    search_fields = ("model_id", "symbol", "owner__username")
    list_select_related = ("instrument", "owner")
    date_hierarchy = "created_at"
    actions = ("evaluate_recent", "promote_if_better", "retire")
    created = list_time("created_at", "created")

    class Media:
        css = {"all": ("training/model.css",)}

    fieldsets = (
        (
            None,
            {"fields": ("model_id", "instrument", "timeframe", "model_type", "horizon", "stage", "owner")},
        ),
        (
            "Training job",
            {"fields": ("status", "progress", "attempts", "error", "created_at", "finished_at")},
        ),
        ("Data", {"fields": ("lookback_period", "train_start", "train_end", "seen_until", "windows")}),
        ("Model", {"fields": ("feature_set_name", "hyperparameters", "best_iteration", "threshold")}),
        ("Holdout", {"fields": ("holdout_chart", "importance_chart")}),
        ("Degenerate: never promoted", {"fields": ("degenerate", "degenerate_reasons_list")}),
        ("Robustness of the holdout signal returns", {"fields": ("robustness_table",)}),
        ("Metrics", {"fields": ("metrics_table",)}),
        ("Artifact", {"fields": ("artifact", "artifact_sha256", "promoted_at")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: MLModel | None = None) -> list[str]:
        return [name for _, options in self.fieldsets for name in options["fields"]]

    def has_manage_permission(self, request: HttpRequest) -> bool:
        """Who may evaluate, promote and retire: holders of the model's change permission."""
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}")

    @admin.display(description="Test score")
    def test_score(self, model: MLModel) -> str:
        metric = promotion_metric(model.model_type)
        return f"{metric} {_number(model.metrics.get('test', {}).get(metric))}" if model.metrics else "-"

    @admin.display(description="Feature set")
    def feature_set_name(self, model: MLModel) -> str:
        return f"{model.feature_set.get('name')} v{model.feature_set.get('version')}"

    @admin.display(description="Why")
    def degenerate_reasons_list(self, model: MLModel) -> SafeString | str:
        if not model.degenerate_reasons:
            return "-"
        items = format_html_join("", "<li>{}</li>", ((reason,) for reason in model.degenerate_reasons))
        return format_html("<ul>{}</ul>", items)

    @admin.display(description="Sharpe tests")
    def robustness_table(self, model: MLModel) -> SafeString | str:
        """The robustness block as a table: each figure with what it means."""
        block = model.robustness or {}
        if not block:
            return (
                "-"
                if model.model_type != "volatility_prediction"
                else "- (a volatility model takes no positions)"
            )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((label, _number(block.get(key)), note) for key, label, note in ROBUSTNESS_ROWS),
        )
        return format_html(
            '<table class="robustness-table"><thead><tr><th>test</th><th>value</th><th>meaning</th></tr>'
            '</thead><tbody>{}</tbody></table><p class="help">Signal returns: long when the model predicts '
            "a rise, short for a fall, earning the next bar's return, gross of fees, on its test split; "
            "family {}.</p>",
            rows,
            block.get("lineage", "-"),
        )

    @admin.display(description="Metrics by split")
    def metrics_table(self, model: MLModel) -> SafeString | str:
        splits = [name for name in ("train", "validation", "test") if name in model.metrics]
        if not splits:
            return "-"
        names = sorted({name for split in splits for name in model.metrics[split]})
        header = format_html_join("", "<th>{}</th>", ((split,) for split in splits))
        rows = format_html_join(
            "",
            "<tr><td>{}</td>{}</tr>",
            (
                (
                    name,
                    format_html_join(
                        "", "<td>{}</td>", ((_number(model.metrics[split].get(name)),) for split in splits)
                    ),
                )
                for name in names
            ),
        )
        return format_html("<table><tr><th>metric</th>{}</tr>{}</table>", header, rows)

    @admin.display(description="Test split against a baseline")
    def holdout_chart(self, model: MLModel) -> SafeString | str:
        """Each test-split score with its no-skill baseline, as a pair of bars and the verdict."""
        test = model.metrics.get("test") or {}
        rows = []
        for name, label, baseline_of, higher in BASELINES:
            value, baseline = test.get(name), baseline_of(test)
            if not isinstance(value, int | float) or not isinstance(baseline, int | float):
                continue
            better = value > baseline if higher else value < baseline
            top = max(abs(value), abs(baseline)) or 1
            rows.append(
                (name, round(160 * abs(value) / top), _number(value), round(160 * abs(baseline) / top),
                 _number(baseline), label, "holdout-better" if better else "holdout-worse",
                 "better" if better else "not better", "higher" if higher else "lower")
            )  # fmt: skip
        if not rows:
            return "-"
        row = (
            '<tr class="holdout-row"><td class="metric">{}</td><td><div class="holdout-pair">'
            '<span class="holdout-bar holdout-model" style="width:{}px"></span>{}<br>'
            '<span class="holdout-bar holdout-baseline" style="width:{}px"></span>{} ({})</div></td>'
            '<td class="{}">{} ({} is better)</td></tr>'
        )
        return format_html(
            '<table class="holdout-table"><thead><tr><th>metric</th><th>model (blue) and baseline (grey)</th>'
            "<th>verdict</th></tr></thead><tbody>{}</tbody></table>"
            '<p class="help">On the {} rows of the test split, never seen in training.</p>',
            format_html_join("", row, rows),
            _number(test.get("rows")),
        )

    @admin.display(description="Feature importance (share of gain)")
    def importance_chart(self, model: MLModel) -> SafeString | str:
        ranked = sorted(model.feature_importances.items(), key=lambda item: -(item[1] or 0))[:CHART_FEATURES]
        top = max((value or 0 for _, value in ranked), default=0)
        if not top:
            return "-"
        bar = (
            '<div class="importance-row"><span class="importance-name">{}</span>'
            '<span class="importance-bar" style="background:#79aec8;width:{}px"></span><span>{}</span></div>'
        )
        return format_html_join(
            "", bar, ((name, round(300 * (value or 0) / top), _number(value)) for name, value in ranked)
        )

    @admin.action(
        description=f"Evaluate on the last {ADMIN_EVALUATION_DAYS} unseen days", permissions=["manage"]
    )
    def evaluate_recent(self, request: HttpRequest, queryset: QuerySet[MLModel]) -> None:
        for model in queryset.select_related("instrument"):
            try:
                evaluation = selectors.model_evaluation(
                    model=model, evaluation_period_days=ADMIN_EVALUATION_DAYS
                )
            except (TrainingInputError, ArtifactError) as error:
                self.message_user(request, f"{model.model_id}: {error}", messages.WARNING)
                continue
            scores = ", ".join(
                f"{name} {_number(evaluation.metrics[name])}"
                for name in HEADLINE_METRICS
                if name in evaluation.metrics
            )
            self.message_user(
                request,
                f"{model.model_id}: {scores} over {evaluation.rows} bars "
                f"({evaluation.start:%Y-%m-%d %H:%M} .. {evaluation.end:%Y-%m-%d %H:%M})",
            )

    @admin.action(description="Promote if it beats the champion", permissions=["manage"])
    def promote_if_better(self, request: HttpRequest, queryset: QuerySet[MLModel]) -> None:
        for model in queryset.select_related("instrument"):
            try:
                decision = model_promote_if_better(candidate=model, actor=ownership.actor_name(request.user))
            except (TrainingInputError, ArtifactError) as error:
                self.message_user(request, f"{model.model_id}: {error}", messages.WARNING)
                continue
            verdict = "promoted" if decision.promoted else "not promoted"
            level = messages.SUCCESS if decision.promoted else messages.INFO
            self.message_user(request, f"{model.model_id} {verdict}: {decision.reason}", level)

    @admin.action(description="Retire", permissions=["manage"])
    def retire(self, request: HttpRequest, queryset: QuerySet[MLModel]) -> None:
        for model in queryset:
            try:
                model_retire(model=model)
            except TrainingInputError as error:
                self.message_user(request, str(error), messages.WARNING)
                continue
            self.message_user(request, f"{model.model_id} retired.")


@admin.register(PromotionDecision)
class PromotionDecisionAdmin(ReadOnlyAdmin):
    # The metric's name is a filter; its values, the paired test and the deflated Sharpe ratio fit beside.
    list_display = (
        "created", "candidate", "promoted", "p_value", "deflated_sharpe", "candidate_value", "champion_value",
        "actor",
    )  # fmt: skip
    created = list_time("created_at", "created")
    list_filter = ("promoted", "metric", "actor")
    list_select_related = ("candidate", "champion")
    search_fields = ("candidate__model_id", "champion__model_id", "reason")
    date_hierarchy = "created_at"


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ("slot_time", "status", "summary", "finished")
    slot_time, finished = list_time("slot"), list_time("finished_at", "finished")
    list_filter = ("status",)
    date_hierarchy = "slot"
    fields = ("slot", "status", "progress", "attempts", "error", "started_at", "finished_at", "report_text")
    readonly_fields = fields

    @admin.display(description="Summary")
    def summary(self, run: TrainingRun) -> str:
        counts = run.report.get("summary", {})
        return ", ".join(f"{name.replace('_', ' ')}: {value}" for name, value in counts.items()) or "-"

    @admin.display(description="What was trained, decided and why")
    def report_text(self, run: TrainingRun) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(run.report, indent=2))
