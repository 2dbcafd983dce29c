"""Admin pages of the strategies app: strategies (backtest/activate/pause/retire), their versions,
backtests with an equity chart and the trades, optimisation runs, decisions, daily update runs, and
generation runs with each candidate's validation and backtest evidence. Backtests and optimisations
carry the robustness panel of ``admin_robustness``.

Strategies are created and edited through the API or the commands, which validate their rules and
keep versions; here they are read, and their status is changed with actions that record a decision.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.core import ownership
from apps.core.admin import ReadOnlyAdmin, ReadOnlyInline, ScreenAdmin, list_time
from apps.core.dispatch import job_dispatch_on_commit
from apps.core.models import JobStatus
from apps.market import selectors as market_selectors
from apps.strategies import documents
from apps.strategies.admin_robustness import backtest_panel, optimisation_panel
from apps.strategies.admin_views import backtest_charts, fold_chart, trial_heatmap
from apps.strategies.errors import StrategyInputError
from apps.strategies.models import (
    Backtest,
    GenerationCandidate,
    GenerationRun,
    JobTrigger,
    OptimizationRun,
    Strategy,
    StrategyDecision,
    StrategyStatus,
    StrategyUpdateRun,
    StrategyVersion,
)
from apps.strategies.services.backtests import backtest_create
from apps.strategies.services.strategies import strategy_update
from workers.strategies import backtest_run

MAX_TRADE_ROWS = 500
MAX_TRIAL_ROWS = 200
REPORT_METRICS = (
    ("Total return %", "total_return_pct"),
    ("CAGR %", "cagr_pct"),
    ("Buy-and-hold return %", "buy_and_hold_return_pct"),
    ("Sharpe ratio", "sharpe_ratio"),
    ("Sortino ratio", "sortino_ratio"),
    ("Calmar ratio", "calmar_ratio"),
    ("Max drawdown %", "max_drawdown_pct"),
    ("Volatility %", "volatility_pct"),
    ("Trades", "num_trades"),
    ("Win rate %", "win_rate_pct"),
    ("Profit factor", "profit_factor"),
    ("Expectancy %", "expectancy_pct"),
    ("Exposure %", "exposure_pct"),
    ("Fees paid", "fees_paid"),
    ("Final equity", "final_equity"),
)
TRADE_COLUMNS = (
    "entry_time", "exit_time", "side", "entry_price", "exit_price", "quantity", "pnl", "return_pct",
    "exit_reason",
)  # fmt: skip


def _number(value: object) -> str:
    return "-" if value is None else f"{value:,.2f}" if isinstance(value, float) else str(value)


def _metric(name: str, description: str) -> Any:
    @admin.display(description=description)
    def show(self: admin.ModelAdmin, job: Backtest) -> str:
        return _number(job.metrics.get(name))

    return show


class VersionInline(ReadOnlyInline):
    model = StrategyVersion
    fields = ("number", "source", "reason", "parameters", "rules", "created_at")
    show_change_link = False


class DecisionInline(ReadOnlyInline):
    model = StrategyDecision
    fields = ("created_at", "kind", "actor", "reason", "numbers")
    show_change_link = False
    fk_name = "strategy"


@admin.register(Strategy)
class StrategyAdmin(ScreenAdmin):
    # The strategy_id is on the row's page and searchable; the list shows what a trader scans.
    list_display = ("name", "symbol", "timeframe", "status", "source", "version", "updated")
    list_display_links = ("name",)
    list_filter = ("status", "type", "source", "timeframe", "instrument", "owner")
    list_select_related = ("instrument", "current_version", "owner")
    search_fields = ("strategy_id", "name", "owner__username")
    fields = (
        "strategy_id", "name", "type", "instrument", "timeframe", "status", "source", "owner", "version",
        "warnings", "created_at", "updated_at",
    )  # fmt: skip
    readonly_fields = fields
    inlines = (VersionInline, DecisionInline)
    actions = ("backtest_now", "activate", "pause", "retire")
    updated = list_time("updated_at", "updated")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Version")
    def version(self, strategy: Strategy) -> int | None:
        return strategy.current_version and strategy.current_version.number

    @admin.display(description="Symbol", ordering="instrument__symbol")
    def symbol(self, strategy: Strategy) -> str:
        return strategy.symbol

    @admin.display(description="Warnings")
    def warnings(self, strategy: Strategy) -> SafeString | str:
        version = strategy.current_version
        return _warning_list(version.parameters, version.rules) if version else "-"

    @admin.action(description="Backtest on every stored candle (on a worker)")
    def backtest_now(self, request: HttpRequest, queryset: QuerySet[Strategy]) -> None:
        enqueued = 0
        for strategy in queryset.select_related("instrument", "current_version"):
            span = market_selectors.candle_span(instrument=strategy.instrument, timeframe=strategy.timeframe)
            try:
                if span is None:
                    raise StrategyInputError({"timeframe": [f"no {strategy.timeframe} candles"]})
                backtest = backtest_create(
                    strategy=strategy,
                    start=span[0],
                    end=span[1],
                    trigger=JobTrigger.ADMIN,
                    owner=request.user,
                )
            except (StrategyInputError, ownership.AccessRefused) as error:  # e.g. the job cap
                self.message_user(request, f"{strategy.strategy_id}: {error}", messages.WARNING)
                continue
            job_dispatch_on_commit(backtest_run, backtest)
            enqueued += 1
        self.message_user(request, f"Enqueued {enqueued} backtest(s); see Backtests.", messages.SUCCESS)

    @admin.action(description="Activate")
    def activate(self, request: HttpRequest, queryset: QuerySet[Strategy]) -> None:
        self._set_status(request, queryset, StrategyStatus.ACTIVE)

    @admin.action(description="Pause")
    def pause(self, request: HttpRequest, queryset: QuerySet[Strategy]) -> None:
        self._set_status(request, queryset, StrategyStatus.PAUSED)

    @admin.action(description="Retire")
    def retire(self, request: HttpRequest, queryset: QuerySet[Strategy]) -> None:
        self._set_status(request, queryset, StrategyStatus.RETIRED)

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Strategy], status: str) -> None:
        reason = f"set to {status} in the admin by {request.user}"
        changed = 0
        for strategy in queryset:
            try:
                strategy_update(strategy=strategy, by=request.user, status=status, reason=reason)
            except (StrategyInputError, ownership.AccessRefused) as error:  # e.g. the activation gate
                self.message_user(request, f"{strategy.strategy_id}: {error}", messages.WARNING)
            else:
                changed += 1
        self.message_user(request, f"{changed} strateg(y/ies) set to {status}.", messages.SUCCESS)


def _warning_list(parameters: object, rules: object) -> SafeString | str:
    """A document's warnings (``documents.document_warnings``) as a list, or "none"."""
    found = documents.document_warnings(parameters=parameters, rules=rules)
    if not found:
        return "none"
    items = format_html_join("", "<li>{}</li>", ((warning["message"],) for warning in found))
    return format_html("<ul>{}</ul>", items)


@admin.register(Backtest)
class BacktestAdmin(ReadOnlyAdmin):
    list_display = (
        "id", "strategy", "status", "total_return", "sharpe", "max_drawdown", "trades", "finished",
    )  # fmt: skip
    list_filter = ("status", "trigger", "owner")
    list_select_related = ("strategy", "version", "owner")
    search_fields = ("strategy__strategy_id",)
    date_hierarchy = "created_at"
    exclude = ("metrics", "trades", "equity_curve", "benchmark", "robustness")
    change_form_template = "admin/strategies/backtest/change_form.html"

    sharpe = _metric("sharpe_ratio", "Sharpe")
    max_drawdown = _metric("max_drawdown_pct", "max DD %")
    trades = _metric("num_trades", "trades")
    finished = list_time("finished_at", "finished")

    @admin.display(description="return % (hold %)")
    def total_return(self, backtest: Backtest) -> str:
        """The strategy's return beside buy and hold's over the same bars: the first comparison."""
        strategy, hold = (
            _number(backtest.metrics.get(name)) for name in ("total_return_pct", "buy_and_hold_return_pct")
        )
        return f"{strategy} ({hold})"

    @admin.display(description="Version", ordering="version__number")
    def version_number(self, backtest: Backtest) -> int:
        return backtest.version.number

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        backtest = self.get_object(request, object_id)
        context = {**(extra_context or {}), **(_report_context(backtest) if backtest else {})}
        return super().change_view(request, object_id, form_url, context)


def _report_context(backtest: Backtest) -> dict[str, Any]:
    """Metrics, the charts (``admin_views.backtest_charts``) and the first trades of a backtest."""
    if backtest.status != JobStatus.COMPLETED:
        return {}
    return {
        "metric_rows": [(label, _number(backtest.metrics.get(key))) for label, key in REPORT_METRICS],
        "backtest_charts": backtest_charts(backtest),
        "trade_columns": TRADE_COLUMNS,
        "trade_rows": [[_number(t[c]) for c in TRADE_COLUMNS] for t in backtest.trades[:MAX_TRADE_ROWS]],
        "trade_count": len(backtest.trades),
        "robustness_panel": backtest_panel(backtest),
    }


@admin.register(OptimizationRun)
class OptimizationRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "strategy", "status", "objective", "n_trials", "folds", "best_params", "finished")
    list_filter = ("status", "trigger", "owner", "method", "objective")
    list_select_related = ("strategy", "owner")
    search_fields = ("strategy__strategy_id",)
    date_hierarchy = "created_at"
    exclude = ("trials", "summary", "fold_layout", "robustness")
    readonly_fields = (
        "overview", "heatmap", "folds_chart", "robustness_panel", "folds_table", "trials_table",
    )  # fmt: skip
    finished = list_time("finished_at", "finished")

    class Media:
        css = {"all": ("strategies/optimization.css", "strategies/robustness.css")}
        js = (
            "market/vendor/lightweight-charts.standalone.production.js",
            "market/time_axis.js",
            "strategies/robustness_charts.js",
        )

    def get_fieldsets(self, request: HttpRequest, obj: OptimizationRun | None = None) -> list:
        """The summary and the charts first, then how far to trust them: what a trader reads before
        the run's settings."""
        charts = ("overview", "heatmap", "folds_chart")
        robustness = ("robustness_panel",)
        rest = [name for name in self.get_fields(request, obj) if name not in charts + robustness]
        return [(None, {"fields": charts}), ("Robustness", {"fields": robustness}), ("Run", {"fields": rest})]

    @admin.display(description="Robustness")
    def robustness_panel(self, run: OptimizationRun) -> str:
        # A template's output, marked safe by the template: every value in it was escaped there.
        return render_to_string("admin/strategies/robustness_panel.html", {"panel": optimisation_panel(run)})

    @admin.display(description="Trials")
    def heatmap(self, run: OptimizationRun) -> SafeString | str:
        return trial_heatmap(run)

    @admin.display(description="Walk-forward folds")
    def folds_chart(self, run: OptimizationRun) -> SafeString | str:
        return fold_chart(run)

    @admin.display(description="Summary")
    def overview(self, run: OptimizationRun) -> SafeString | str:
        summary = run.summary
        if not summary:
            return "-"
        return format_html(
            "best parameters {} · in-sample {} {} · out-of-sample {} · walk-forward efficiency {} · "
            "{} trial(s) rejected · {}",
            run.best_params,
            run.objective,
            _number(summary["in_sample_objective"]),
            _number(summary["out_of_sample_objective"]),
            _number(summary["walk_forward_efficiency"]),
            summary["failed"],
            summary["warning"] or "no overfitting warning",
        )

    @admin.display(description="Folds: the in-sample pick and how it did out of sample")
    def folds_table(self, run: OptimizationRun) -> SafeString | str:
        objective = run.objective
        rows = [
            (
                pick["fold"],
                pick["best_params"],
                _number(pick["in_sample"][objective]),
                _number(pick["out_of_sample"] and pick["out_of_sample"][objective]),
                _number(pick["in_sample"]["total_return_pct"]),
                _number(pick["out_of_sample"] and pick["out_of_sample"]["total_return_pct"]),
            )
            for pick in run.summary.get("folds", [])
        ]
        header = ("Fold", "Params", f"IS {objective}", f"OOS {objective}", "IS return %", "OOS return %")
        return _html_table(header, rows)

    @admin.display(description="Trials table")
    def trials_table(self, run: OptimizationRun) -> SafeString | str:
        rows = [
            (
                t["index"],
                t["params"],
                t.get("error") or _number(t["in_sample_objective"]),
                "" if "error" in t else _number(t["out_of_sample_objective"]),
            )
            for t in run.trials[:MAX_TRIAL_ROWS]
        ]
        return _html_table(("Trial", "Params", "IS objective (or error)", "OOS objective"), rows)


def _html_table(header: tuple[str, ...], rows: list[tuple]) -> SafeString | str:
    if not rows:
        return "-"
    head = format_html_join("", "<th>{}</th>", ((name,) for name in header))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((v,) for v in row)),) for row in rows)
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


@admin.register(StrategyDecision)
class StrategyDecisionAdmin(ReadOnlyAdmin):
    list_display = ("created", "strategy", "kind", "actor", "reason")
    created = list_time("created_at", "created")
    list_filter = ("kind",)
    list_select_related = ("strategy",)
    search_fields = ("strategy__strategy_id", "reason", "actor")
    date_hierarchy = "created_at"


@admin.register(StrategyUpdateRun)
class StrategyUpdateRunAdmin(ReadOnlyAdmin):
    list_display = ("date", "status", "summary", "started", "finished")
    started, finished = list_time("started_at", "started"), list_time("finished_at", "finished")
    list_filter = ("status",)


class CandidateInline(ReadOnlyInline):
    model = GenerationCandidate
    fields = (
        "index", "name", "outcome", "reason", "holdout_return", "holdout_buy_and_hold_pct", "holdout_sharpe",
        "train_metrics", "holdout_metrics", "document", "warnings", "strategy",
    )  # fmt: skip
    readonly_fields = fields
    show_change_link = False

    @admin.display(description="Warnings")
    def warnings(self, candidate: GenerationCandidate) -> SafeString | str:
        return _warning_list(candidate.document.get("parameters"), candidate.document.get("rules"))

    @admin.display(description="holdout return %")
    def holdout_return(self, candidate: GenerationCandidate) -> str:
        return _number((candidate.holdout_metrics or {}).get("total_return_pct"))

    @admin.display(description="holdout Sharpe")
    def holdout_sharpe(self, candidate: GenerationCandidate) -> str:
        return _number((candidate.holdout_metrics or {}).get("sharpe_ratio"))


@admin.register(GenerationRun)
class GenerationRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "instrument", "timeframe", "count", "status", "provider_used", "summary", "created")
    created = list_time("created_at", "created")
    list_filter = ("status", "provider_used", "trigger", "owner", "timeframe")
    list_select_related = ("instrument", "owner")
    date_hierarchy = "created_at"
    fields = (
        "instrument", "timeframe", "count", "trigger", "owner", "update_run", "status", "progress", "error",
        "provider_requested", "provider_used", "model", "llm_status", "llm_calls", "llm_failures",
        "summary", "context", "created_at", "started_at", "finished_at",
    )  # fmt: skip
    readonly_fields = fields
    inlines = (CandidateInline,)
