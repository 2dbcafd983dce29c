"""The trading ledger: accounts, orders, fills, positions, snapshots, refusals and repairs.

Money and quantities are Decimal with 8 places (what exchanges report). An account's cash and
positions change only inside a transaction that holds the account's row lock
(``select_for_update``), and the database refuses negative cash or holdings outright.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import Job
from apps.market.models import Instrument
from apps.trading import crypto
from apps.trading.domain.fills import OrderType, Side
from apps.trading.domain.risk_rules import TradingState


def amount_field(**options: object) -> models.DecimalField:
    """A ledger amount: up to 20 digits before the point and 8 after."""
    return models.DecimalField(max_digits=28, decimal_places=8, **options)


def fraction_field(help_text: str, default: str | None = None) -> models.DecimalField:
    return models.DecimalField(
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        default=None if default is None else Decimal(default),
        help_text=help_text + " Empty: no limit.",
    )


class AccountKind(models.TextChoices):
    PAPER = "paper", "Paper (simulated fills)"
    LIVE = "live", "Live (orders go to the exchange)"


class Account(models.Model):
    """A trading account: its cash, its risk limits, its trading state and, for live, exchange keys.

    The exchange keys are stored encrypted (Fernet, key from ``FIELD_ENCRYPTION_KEY``) and only
    decrypted to build the exchange client; nothing renders or logs them.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trading_accounts"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=AccountKind.choices, default=AccountKind.PAPER)
    exchange = models.CharField(max_length=32, default="binance", help_text="A ccxt exchange id")
    quote_currency = models.CharField(max_length=16, default="USDT", help_text="The currency cash is held in")
    starting_cash = amount_field()
    cash = amount_field(help_text="Cash held (for a live account: the exchange's total quote balance)")
    paper_fee_rate = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        default=Decimal("0.001"),
        help_text="Paper commission: fraction of notional",
    )
    paper_slippage = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        default=Decimal("0.0005"),
        help_text="Paper slippage: fraction of price, against the trader, on market and stop fills",
    )
    trading_state = models.CharField(
        max_length=10,
        choices=[(state.value, state.value) for state in TradingState],
        default=TradingState.ACTIVE.value,
        db_index=True,
    )
    state_reason = models.CharField(max_length=300, blank=True, default="")
    state_changed_at = models.DateTimeField(null=True, blank=True)
    auto_trading = models.BooleanField(default=False, help_text="Strategies linked to this account may trade")
    auto_allocate = models.BooleanField(
        default=False,
        help_text="The lifecycle policy (with TRADING_AUTO_ALLOCATE): strategies that pass the gates are "
        "allocated a share automatically, retired ones are wound down",
    )
    # Risk limits, editable in the admin.
    max_order_notional = amount_field(
        null=True, blank=True, help_text="Largest order, in the quote currency."
    )
    max_position_notional = amount_field(
        null=True, blank=True, help_text="Largest position (held plus open buys), in the quote currency."
    )
    max_position_pct = fraction_field("Largest position as a fraction of equity.")
    max_exposure_pct = fraction_field("All positions plus open buys, as a fraction of equity.", "1")
    max_open_orders = models.PositiveIntegerField(null=True, blank=True, default=50)
    max_open_positions = models.PositiveIntegerField(null=True, blank=True, default=20)
    price_band_pct = fraction_field("Largest distance of an order's price from the last price.", "0.05")
    max_orders_per_minute = models.PositiveIntegerField(null=True, blank=True, default=60)
    max_daily_loss_pct = fraction_field(
        "Loss since the start of the UTC day that switches to reducing.", "0.1"
    )
    max_drawdown_pct = fraction_field("Fall from the equity peak that halts trading.", "0.3")
    # Reference points of the loss limits, kept under the account lock.
    peak_equity = amount_field()
    day_start_equity = amount_field()
    day_start = models.DateField(null=True, blank=True, help_text="The UTC day day_start_equity belongs to")
    api_key_encrypted = models.TextField(blank=True, default="", editable=False)
    api_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("owner", "created_at")
        constraints = [
            models.CheckConstraint(condition=Q(cash__gte=0), name="account_cash_not_negative"),
            models.UniqueConstraint(fields=("owner", "name"), name="account_unique_name_per_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.quote_currency})"

    def __repr__(self) -> str:
        return f"<Account {self.pk} {self.name!r} {self.kind}>"

    @property
    def is_live(self) -> bool:
        return self.kind == AccountKind.LIVE

    @property
    def has_api_keys(self) -> bool:
        return bool(self.api_key_encrypted and self.api_secret_encrypted)

    def set_api_keys(self, *, api_key: str, secret: str) -> None:
        """Encrypt and set the exchange keys (empty strings clear them); the caller saves."""
        self.api_key_encrypted = crypto.encrypt(api_key) if api_key else ""
        self.api_secret_encrypted = crypto.encrypt(secret) if secret else ""

    def api_keys(self) -> tuple[str, str]:
        """The decrypted (key, secret); only for building the exchange client."""
        return crypto.decrypt(self.api_key_encrypted), crypto.decrypt(self.api_secret_encrypted)


class OrderStatus(models.TextChoices):
    NEW = "NEW"
    SUBMITTING = "SUBMITTING"
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"


# Orders that may still fill: they count against the open-order limit and reserve funds.
LIVE_STATUSES = (
    OrderStatus.NEW,
    OrderStatus.SUBMITTING,
    OrderStatus.OPEN,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.UNKNOWN,
)
FINAL_STATUSES = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED)


class OrderSource(models.TextChoices):
    API = "api"
    STRATEGY = "strategy"
    LLM = "llm"
    ADMIN = "admin"
    COMMAND = "command"
    PROTECTIVE = "protective", "Stop-loss or take-profit attached to an entry"
    EXCHANGE = "exchange", "Found on the exchange by reconciliation"


class TimeInForce(models.TextChoices):
    GTC = "GTC", "Good till canceled"
    IOC = "IOC", "Immediate or cancel"
    FOK = "FOK", "Fill or kill"


class Order(models.Model):
    """One order, from the request to its final status; ``client_order_id`` is also sent to the exchange."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="orders")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="orders")
    client_order_id = models.CharField(max_length=36)
    exchange_order_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    source = models.CharField(max_length=12, choices=OrderSource.choices, default=OrderSource.API)
    created_by = models.CharField(
        max_length=150,
        blank=True,
        default="",
        help_text="Who placed it: a username, or the job (orchestrator, reconciliation, a command); "
        "empty: placed before this was recorded",
    )
    side = models.CharField(max_length=4, choices=[(s.value, s.value) for s in Side])
    type = models.CharField(max_length=16, choices=[(t.value, t.value) for t in OrderType])
    quantity = amount_field()
    price = amount_field(null=True, blank=True, help_text="Limit price (LIMIT and STOP_LOSS_LIMIT)")
    stop_price = amount_field(null=True, blank=True, help_text="Trigger price (stop and take-profit types)")
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC)
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.NEW, db_index=True
    )
    filled_quantity = amount_field(default=Decimal(0))
    average_price = amount_field(null=True, blank=True)
    fees = amount_field(default=Decimal(0), help_text="Fees paid, in fee_currency")
    fee_currency = models.CharField(max_length=16, blank=True, default="")
    reject_code = models.CharField(max_length=40, blank=True, default="")
    reject_reason = models.CharField(max_length=500, blank=True, default="")
    oco_group = models.CharField(
        max_length=40,
        blank=True,
        default="",
        help_text="Orders sharing a group cancel each other when one fills",
    )
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children",
        help_text="The entry order a protective order was attached to",
    )  # fmt: skip
    strategy = models.ForeignKey(
        "strategies.Strategy", on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    allocation = models.ForeignKey(
        "StrategyAllocation", on_delete=models.PROTECT, null=True, blank=True, related_name="orders",
        help_text="The strategy allocation whose book the order trades; empty: the manual book",
    )  # fmt: skip
    attach_stop_loss_pct = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, blank=True,
        help_text="Once filled, protect the position with a stop this fraction below the fill price",
    )  # fmt: skip
    attach_take_profit_pct = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, blank=True,
        help_text="Once filled, take profit this fraction above the fill price",
    )  # fmt: skip
    triggered_at = models.DateTimeField(null=True, blank=True, help_text="When a stop-limit order triggered")
    match_from = models.DateTimeField(
        null=True, blank=True, help_text="Paper: candles opening at or after this time can fill the order"
    )
    matched_through = models.DateTimeField(
        null=True, blank=True, help_text="Paper: open time of the last candle the order was checked against"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("account", "client_order_id"), name="order_unique_client_order_id"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_quantity_positive"),
            models.CheckConstraint(condition=Q(filled_quantity__gte=0), name="order_filled_not_negative"),
        ]
        indexes = [models.Index(fields=("account", "status"), name="order_account_status")]

    def __str__(self) -> str:
        price = f" @ {self.price}" if self.price is not None else ""
        return f"{self.side} {self.quantity} {self.instrument.symbol} {self.type}{price} [{self.status}]"

    @property
    def is_live_status(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity


class Fill(models.Model):
    """One execution of an order; the exchange's trade id (``paper-...`` on paper) is recorded once."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="fills")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+")
    trade_id = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=[(s.value, s.value) for s in Side])
    quantity = amount_field()
    price = amount_field()
    fee = amount_field(default=Decimal(0))
    fee_currency = models.CharField(max_length=16, blank=True, default="")
    realised_pnl = amount_field(default=Decimal(0), help_text="PnL this fill realised (fees included)")
    is_maker = models.BooleanField(default=False)
    executed_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-executed_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("account", "instrument", "trade_id"), name="fill_unique_trade_id"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="fill_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} @ {self.price} ({self.trade_id})"


class Position(models.Model):
    """What one book of an account holds of one instrument, its cost and the PnL realised on it.

    Each strategy allocation keeps its own book (its position, average price and PnL), and the
    account's manual orders keep theirs (``allocation`` empty): a strategy's exit sells only what
    it bought. The account's figures are the sum of its books.
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="positions")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+")
    allocation = models.ForeignKey(
        "StrategyAllocation", on_delete=models.PROTECT, null=True, blank=True, related_name="positions",
        help_text="The allocation whose book this is; empty: the manual book",
    )  # fmt: skip
    quantity = amount_field(default=Decimal(0))
    cost_basis = amount_field(default=Decimal(0), help_text="What the quantity held cost, fees apart")
    realised_pnl = amount_field(default=Decimal(0))
    opened_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("account", "instrument")
        constraints = [
            models.UniqueConstraint(
                fields=("account", "instrument"),
                condition=Q(allocation__isnull=True),
                name="position_one_manual_book_per_instrument",
            ),
            models.UniqueConstraint(
                fields=("account", "instrument", "allocation"),
                condition=Q(allocation__isnull=False),
                name="position_one_book_per_allocation_and_instrument",
            ),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="position_quantity_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} {self.instrument.symbol}"

    @property
    def average_entry(self) -> Decimal | None:
        return (self.cost_basis / self.quantity).quantize(Decimal("1e-8")) if self.quantity else None


class PortfolioSnapshot(models.Model):
    """An account's value at one time slot (unique per slot: a repeated snapshot job adds nothing)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="snapshots")
    time = models.DateTimeField()
    cash = amount_field()
    positions_value = amount_field()
    equity = amount_field()
    unrealised_pnl = amount_field()
    realised_pnl = amount_field()
    total_pnl = amount_field()
    daily_pnl = amount_field()
    exposure = models.DecimalField(max_digits=12, decimal_places=6)
    drawdown = models.DecimalField(max_digits=12, decimal_places=6)
    positions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ("account", "-time")
        constraints = [models.UniqueConstraint(fields=("account", "time"), name="snapshot_unique_per_slot")]

    def __str__(self) -> str:
        return f"{self.account.name} @ {self.time:%Y-%m-%d %H:%M}: {self.equity}"


class RiskRefusal(models.Model):
    """An order the risk manager refused, with the limit it broke."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="refusals")
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="refusal")
    code = models.CharField(max_length=40, db_index=True)
    limit = models.CharField(max_length=40)
    limit_value = models.CharField(max_length=100)
    actual = models.CharField(max_length=100)
    message = models.CharField(max_length=500)
    source = models.CharField(max_length=12, choices=OrderSource.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class AccountStateChange(models.Model):
    """A change of an account's trading state: by a limit, or by a person (halt, resume)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="state_changes")
    previous = models.CharField(max_length=10)
    state = models.CharField(max_length=10)
    reason = models.CharField(max_length=300)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.account.name}: {self.previous} -> {self.state}"


class IdempotencyKey(models.Model):
    """An ``Idempotency-Key`` a user sent with an order request: the same key returns the same order."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the validated request")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=("user", "key"), name="idempotency_key_unique_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.key} -> order {self.order_id}"


class Reconciliation(Job):
    """One comparison of a live account with its exchange; every difference repaired is a Repair."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="reconciliations")
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"Reconciliation {self.pk} of {self.account.name}"


class RepairKind(models.TextChoices):
    ORDER_STATUS = "order_status", "Order status changed on the exchange"
    ORDER_RESOLVED = "order_resolved", "An order of unknown outcome was resolved"
    ORDER_IMPORTED = "order_imported", "An order placed outside the system was found"
    FILL_ADDED = "fill_added", "A fill the system had missed"
    CASH = "cash", "Cash differed from the exchange balance"
    POSITION = "position", "A position differed from the exchange balance"


class Repair(models.Model):
    """One difference between the ledger and the exchange, and what was done about it."""

    reconciliation = models.ForeignKey(Reconciliation, on_delete=models.CASCADE, related_name="repairs")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="repairs")
    kind = models.CharField(max_length=16, choices=RepairKind.choices)
    order = models.ForeignKey(Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="repairs")
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class StrategyAllocation(models.Model):
    """A strategy trading on an account with a share of its equity and a book of its own: the
    orchestrator acts on it while both are switched on. A wound-down allocation (its strategy was
    retired) closes its position at the next bar and then stays disabled."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="allocations")
    strategy = models.ForeignKey("strategies.Strategy", on_delete=models.CASCADE, related_name="allocations")
    capital_pct = models.DecimalField(
        max_digits=9, decimal_places=6, default=Decimal("1"),
        help_text="Share of the account's equity the strategy's position sizing starts from",
    )  # fmt: skip
    enabled = models.BooleanField(default=True)
    winding_down = models.BooleanField(
        default=False, help_text="Closing its position and orders at the next bar, then disabled"
    )
    note = models.CharField(max_length=300, blank=True, default="", help_text="Why it was last changed")
    created_by = models.CharField(
        max_length=150, blank=True, default="", help_text="The user, or the scheduled job, that made it"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("account", "strategy")
        constraints = [
            models.UniqueConstraint(fields=("account", "strategy"), name="allocation_unique_per_account"),
            models.CheckConstraint(
                condition=Q(capital_pct__gt=0) & Q(capital_pct__lte=1), name="allocation_capital_pct_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.strategy} on {self.account.name}"


class OrchestratorCycle(Job):
    """One pass of the orchestrator over every enabled allocation."""

    trigger = models.CharField(max_length=16, default="beat")
    acted = models.PositiveIntegerField(default=0, help_text="Strategies that acted on a new candle")
    orders_placed = models.PositiveIntegerField(default=0)
    orders_refused = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"Orchestrator cycle {self.pk}"


class StrategyAction(models.Model):
    """What one strategy did on one candle for one account: unique, so it acts at most once per candle."""

    allocation = models.ForeignKey(StrategyAllocation, on_delete=models.CASCADE, related_name="actions")
    candle_time = models.DateTimeField(help_text="Open time of the closed candle the rules were evaluated on")
    signal = models.CharField(max_length=8)
    decision = models.CharField(max_length=200)
    order = models.ForeignKey(Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    cycle = models.ForeignKey(
        OrchestratorCycle, on_delete=models.SET_NULL, null=True, blank=True, related_name="actions"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-candle_time",)
        constraints = [
            models.UniqueConstraint(fields=("allocation", "candle_time"), name="action_once_per_candle")
        ]

    def __str__(self) -> str:
        return f"{self.allocation}: {self.signal} @ {self.candle_time:%Y-%m-%d %H:%M} ({self.decision})"


class StrategyPerformance(models.Model):
    """A strategy's live results on an account at one snapshot slot, beside its backtest's."""

    allocation = models.ForeignKey(StrategyAllocation, on_delete=models.CASCADE, related_name="performance")
    time = models.DateTimeField()
    realised_pnl = amount_field()
    unrealised_pnl = amount_field()
    total_pnl = amount_field()
    return_pct = models.DecimalField(max_digits=14, decimal_places=6)
    drawdown_pct = models.DecimalField(max_digits=14, decimal_places=6)
    trades = models.PositiveIntegerField()
    backtest_return_pct = models.DecimalField(
        max_digits=14, decimal_places=6, null=True, blank=True,
        help_text="The backtest of the same version over the same period (null: not computed this slot)",
    )  # fmt: skip

    class Meta:
        ordering = ("allocation", "-time")
        constraints = [
            models.UniqueConstraint(fields=("allocation", "time"), name="performance_unique_per_slot")
        ]

    def __str__(self) -> str:
        return f"{self.allocation} @ {self.time:%Y-%m-%d %H:%M}: {self.total_pnl}"
