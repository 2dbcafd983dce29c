"""Admin pages of the trading app: accounts (risk limits, keys, halt/resume, an equity chart), orders
(cancel), fills, positions, snapshots, refusals, reconciliations and the orchestrator's records."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from apps.core.admin import ReadOnlyAdmin, ReadOnlyInline, ScreenAdmin, list_time
from apps.trading import selectors
from apps.trading.errors import ExchangeUnavailable, TradingError
from apps.trading.models import (
    Account,
    AccountStateChange,
    Fill,
    IdempotencyKey,
    OrchestratorCycle,
    Order,
    PortfolioSnapshot,
    Position,
    Reconciliation,
    Repair,
    RiskRefusal,
    StrategyAction,
    StrategyAllocation,
    StrategyPerformance,
)
from apps.trading.services.accounts import account_halt, account_resume
from apps.trading.services.allocations import (
    allocation_change,
    allocation_create,
    allocation_wind_down,
    share_left,
    tradeable_problem,
)
from apps.trading.services.lifecycle import lifecycle_plan, policy_on
from apps.trading.services.orders import order_cancel

CHART_POINTS = 500
CHART_WIDTH, CHART_HEIGHT = 600, 160
LIMIT_FIELDS = (
    "max_order_notional",
    "max_position_notional",
    "max_position_pct",
    "max_exposure_pct",
    "max_open_orders",
    "max_open_positions",
    "price_band_pct",
    "max_orders_per_minute",
    "max_daily_loss_pct",
    "max_drawdown_pct",
)


class AccountForm(forms.ModelForm):
    """Exchange keys are write-only: typed in, stored encrypted, never shown again."""

    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep",
    )
    api_secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep",
    )
    clear_api_keys = forms.BooleanField(required=False, help_text="Remove the stored keys")

    class Meta:
        model = Account
        fields = (
            "owner", "name", "kind", "exchange", "quote_currency", "starting_cash", "auto_trading",
            "auto_allocate", "paper_fee_rate", "paper_slippage", *LIMIT_FIELDS,
        )  # fmt: skip


@admin.register(Account)
class AccountAdmin(ScreenAdmin):
    form = AccountForm
    list_display = (
        "name",
        "owner",
        "kind",
        "cash",
        "trading_state",
        "auto_trading",
        "keys",
    )
    list_filter = ("kind", "trading_state", "auto_trading", "exchange")
    search_fields = ("name", "owner__username")
    actions = ("halt", "resume")
    readonly_fields = (
        "cash", "trading_state", "state_reason", "state_changed_at", "peak_equity", "day_start_equity",
        "day_start", "keys", "equity_chart", "lifecycle", "created_at",
    )  # fmt: skip
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "owner",
                    "name",
                    "kind",
                    "exchange",
                    "quote_currency",
                    "starting_cash",
                    "cash",
                    "auto_trading",
                    "auto_allocate",
                    "lifecycle",
                )
            },
        ),
        ("Risk limits", {"fields": LIMIT_FIELDS}),
        ("Paper fills", {"fields": ("paper_fee_rate", "paper_slippage")}),
        (
            "Trading state",
            {
                "fields": (
                    "trading_state",
                    "state_reason",
                    "state_changed_at",
                    "peak_equity",
                    "day_start_equity",
                    "day_start",
                )
            },
        ),
        ("Exchange keys", {"fields": ("keys", "api_key", "api_secret", "clear_api_keys")}),
        ("Equity", {"fields": ("equity_chart",)}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Account | None = None) -> tuple[str, ...]:
        # Starting cash and kind define the ledger: set once, when the account is created.
        return self.readonly_fields + (("starting_cash", "kind", "owner") if obj else ())

    @admin.display(description="Lifecycle policy")
    def lifecycle(self, account: Account) -> str:
        if account.pk is None:
            return "-"
        steps = lifecycle_plan(account=account)
        state = "acts at each orchestrator cycle" if policy_on(account) else "off: these wait for you"
        if not steps:
            return f"{state}; nothing to do"
        return format_html(
            "{}:<ul>{}</ul>",
            state,
            format_html_join(
                "",
                "<li>{} {}: {}{}</li>",
                (
                    (s.action, s.strategy_id, s.reason, f" (blocked: {s.blocked})" if s.blocked else "")
                    for s in steps
                ),
            ),
        )

    @admin.display(description="Keys", boolean=True)
    def keys(self, account: Account) -> bool:
        return account.has_api_keys

    def save_model(self, request: HttpRequest, obj: Account, form: AccountForm, change: bool) -> None:
        data = form.cleaned_data
        if data.get("clear_api_keys"):
            obj.set_api_keys(api_key="", secret="")
        elif data.get("api_key") or data.get("api_secret"):
            current_key, current_secret = obj.api_keys() if obj.has_api_keys else ("", "")
            obj.set_api_keys(
                api_key=data.get("api_key") or current_key, secret=data.get("api_secret") or current_secret
            )
        if not change:
            obj.cash = obj.peak_equity = obj.day_start_equity = obj.starting_cash
            obj.save()
            return
        # Only what the form changed: a full save would write back a balance the ledger moved since.
        fields = [
            name for name in form.changed_data if name in {f.name for f in Account._meta.concrete_fields}
        ]
        obj.save(update_fields=[*fields, "api_key_encrypted", "api_secret_encrypted"])

    @admin.action(description="Halt trading (kill switch)")
    def halt(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        for account in queryset:
            account_halt(account=account, by=request.user, reason=f"halted in the admin by {request.user}")
        self.message_user(request, f"{queryset.count()} account(s) halted.", messages.WARNING)

    @admin.action(description="Resume trading")
    def resume(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        for account in queryset:
            account_resume(account=account, by=request.user, reason=f"resumed in the admin by {request.user}")
        self.message_user(request, f"{queryset.count()} account(s) resumed.")

    @admin.display(description="Equity over time")
    def equity_chart(self, account: Account) -> str:
        if account.pk is None:
            return "-"
        equity = [float(s.equity) for s in selectors.snapshot_list(account=account).reverse()[:CHART_POINTS]][
            ::-1
        ]
        if len(equity) < 2:
            return "Not enough portfolio snapshots yet."
        low, high = min(equity), max(equity)
        span = (high - low) or 1.0
        step = CHART_WIDTH / (len(equity) - 1)
        points = " ".join(
            f"{i * step:.1f},{CHART_HEIGHT - (value - low) / span * CHART_HEIGHT:.1f}"
            for i, value in enumerate(equity)
        )
        return format_html(
            '<svg width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="equity">'
            '<polyline fill="none" stroke="#417690" stroke-width="1.5" points="{}"/></svg>'
            "<div>{} snapshots; low {}, high {}, last {}</div>",
            CHART_WIDTH, CHART_HEIGHT, CHART_WIDTH, CHART_HEIGHT, points, len(equity),
            f"{low:,.2f}", f"{high:,.2f}", f"{equity[-1]:,.2f}",
        )  # fmt: skip


class FillInline(ReadOnlyInline):
    model = Fill
    fields = ("trade_id", "side", "quantity", "price", "fee", "fee_currency", "realised_pnl", "executed_at")


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "id", "created", "symbol", "side", "type", "amount", "status", "average_price",
    )  # fmt: skip
    created = list_time("created_at", "created")
    list_select_related = ("instrument",)

    @admin.display(description="symbol", ordering="instrument__symbol")
    def symbol(self, order: Order) -> str:
        return order.instrument.symbol

    @admin.display(description="quantity", ordering="quantity")
    def amount(self, order: Order) -> str:
        """Without the trailing zeros of the stored scale: 0.5, not 0.50000000."""
        return f"{order.quantity.normalize():f}"

    list_filter = ("status", "side", "type", "source", "account__kind")
    search_fields = ("client_order_id", "exchange_order_id", "instrument__symbol", "created_by")
    date_hierarchy = "created_at"
    inlines = (FillInline,)
    actions = ("cancel",)

    @admin.action(description="Cancel the selected orders")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        canceled = 0
        for order in queryset.select_related("account", "instrument"):
            try:
                order_cancel(order=order)
            except (TradingError, ExchangeUnavailable) as error:
                self.message_user(request, f"Order {order.pk}: {error}", messages.ERROR)
            else:
                canceled += 1
        self.message_user(request, f"{canceled} order(s) canceled.")


@admin.register(Fill)
class FillAdmin(ReadOnlyAdmin):
    list_display = (
        "trade_id",
        "instrument",
        "side",
        "quantity",
        "price",
        "realised_pnl",
        "executed",
    )
    executed = list_time("executed_at", "executed")
    list_filter = ("side", "account")
    search_fields = ("trade_id", "order__client_order_id")
    date_hierarchy = "executed_at"


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = (
        "account",
        "instrument",
        "quantity",
        "average_entry",
        "cost_basis",
        "realised_pnl",
        "updated",
    )
    list_filter = ("account",)
    updated = list_time("updated_at", "updated")


@admin.register(PortfolioSnapshot)
class PortfolioSnapshotAdmin(ReadOnlyAdmin):
    list_display = (
        "account",
        "time",
        "equity",
        "cash",
        "positions_value",
        "total_pnl",
        "daily_pnl",
        "drawdown",
    )
    list_filter = ("account",)
    date_hierarchy = "time"


@admin.register(RiskRefusal)
class RiskRefusalAdmin(ReadOnlyAdmin):
    list_display = ("created", "account", "code", "actual_and_limit", "message")
    created = list_time("created_at", "created")

    @admin.display(description="actual (limit)")
    def actual_and_limit(self, refusal: RiskRefusal) -> str:
        return f"{refusal.actual} ({refusal.limit_value})"

    list_filter = ("code", "source", "account")
    date_hierarchy = "created_at"


@admin.register(AccountStateChange)
class AccountStateChangeAdmin(ReadOnlyAdmin):
    list_display = ("created", "account", "previous", "state", "changed_by", "reason")
    created = list_time("created_at", "created")
    list_filter = ("state", "account")


class RepairInline(ReadOnlyInline):
    model = Repair
    fields = ("kind", "order", "message", "before", "after")


@admin.register(Reconciliation)
class ReconciliationAdmin(ReadOnlyAdmin):
    list_display = ("id", "account", "status", "summary", "finished")
    finished = list_time("finished_at", "finished")
    list_filter = ("status", "account")
    inlines = (RepairInline,)


@admin.register(Repair)
class RepairAdmin(ReadOnlyAdmin):
    list_display = ("created", "account", "kind", "order", "message")
    created = list_time("created_at", "created")
    list_filter = ("kind", "account")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ("key", "user", "order", "created_at")
    search_fields = ("key",)


class StrategyAllocationForm(forms.ModelForm):
    """The API's checks: a strategy that could never trade on the account, or a share the account's
    enabled allocations do not have left, is refused with the reason."""

    class Meta:
        model = StrategyAllocation
        fields = ("account", "strategy", "capital_pct", "enabled", "note")

    def clean(self) -> dict:
        data = super().clean() or {}
        account, strategy = data.get("account"), data.get("strategy")
        if account is None or strategy is None:
            return data
        current = self.instance if self.instance.pk else None
        if current is None or (data.get("enabled") and not current.enabled):
            problem = tradeable_problem(strategy=strategy, account=account)
            if problem is not None:
                raise forms.ValidationError(problem.message)
        left = share_left(account=account, excluding=current)
        if data.get("enabled") and data.get("capital_pct") is not None and data["capital_pct"] > left:
            raise forms.ValidationError(f"at most {left:.4f} of the account's equity is left to allocate")
        return data


@admin.register(StrategyAllocation)
class StrategyAllocationAdmin(ScreenAdmin):
    """Allocations are made and changed through the allocation service (a recorded decision each);
    they are wound down, never deleted: their orders and fills keep pointing at them."""

    form = StrategyAllocationForm
    list_display = ("strategy", "account", "capital_pct", "enabled", "winding_down", "created")
    created = list_time("created_at", "created")
    list_filter = ("enabled", "winding_down", "account")
    readonly_fields = ("winding_down", "created_by", "created_at")
    actions = ("wind_down",)

    def get_readonly_fields(
        self, request: HttpRequest, obj: StrategyAllocation | None = None
    ) -> tuple[str, ...]:
        return self.readonly_fields + (("account", "strategy") if obj else ())

    def has_delete_permission(self, request: HttpRequest, obj: StrategyAllocation | None = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: StrategyAllocation, form: forms.ModelForm, change: bool
    ) -> None:
        by = request.user.get_username()
        if change:
            allocation_change(
                allocation=obj, by=by, capital_pct=obj.capital_pct, enabled=obj.enabled, note=obj.note
            )
            return
        made = allocation_create(
            account=obj.account,
            strategy=obj.strategy,
            capital_pct=obj.capital_pct,
            enabled=obj.enabled,
            by=by,
            note=obj.note,
        )
        obj.pk = made.pk

    @admin.action(description="Wind down (close its book at the next candle, then switch off)")
    def wind_down(self, request: HttpRequest, queryset: QuerySet[StrategyAllocation]) -> None:
        for allocation in queryset:
            allocation_wind_down(
                allocation=allocation, by=request.user.get_username(), reason="wound down in the admin"
            )
        self.message_user(request, f"{queryset.count()} allocation(s) winding down.")


@admin.register(StrategyAction)
class StrategyActionAdmin(ReadOnlyAdmin):
    list_display = ("candle", "allocation", "signal", "decision", "order")
    candle = list_time("candle_time", "candle")
    list_filter = ("signal", "allocation")


@admin.register(OrchestratorCycle)
class OrchestratorCycleAdmin(ReadOnlyAdmin):
    list_display = ("id", "status", "acted", "orders_placed", "orders_refused", "created", "finished")
    created, finished = list_time("created_at", "created"), list_time("finished_at", "finished")
    list_filter = ("status",)


@admin.register(StrategyPerformance)
class StrategyPerformanceAdmin(ReadOnlyAdmin):
    list_display = (
        "time",
        "allocation",
        "total_pnl",
        "return_pct",
        "drawdown_pct",
        "backtest_return_pct",
        "trades",
    )
    list_filter = ("allocation",)
