"""Shapes of the trading API. Money and quantities travel as decimal strings; keys never travel."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.api import IdField
from apps.trading.domain.fills import OrderType, Side
from apps.trading.domain.ledger import ZERO
from apps.trading.domain.risk_rules import TradingState
from apps.trading.models import (
    Account,
    AccountKind,
    Fill,
    OrchestratorCycle,
    Order,
    OrderSource,
    OrderStatus,
    PortfolioSnapshot,
    StrategyAction,
    StrategyAllocation,
    StrategyPerformance,
    TimeInForce,
)
from apps.trading.selectors import Portfolio, PositionRow, Wallet
from apps.trading.services.lifecycle import lifecycle_plan, policy_on

AMOUNT = {"max_digits": 28, "decimal_places": 8}


class InlineChoiceField(serializers.ChoiceField):
    """A choice field the API schema shows as a string listing its choices, not as an enum component:
    other apps have their own, different ``status``, ``type``, ``source`` and ``kind`` choices, and
    enum components named after the field would clash."""


class InlineChoiceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = InlineChoiceField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        return {"type": "string", "description": f"one of: {', '.join(self.target.choices)}"}


class UpperChoiceField(InlineChoiceField):
    """A choice given in any case (``buy`` or ``BUY``)."""

    def to_internal_value(self, data: Any) -> str:
        return super().to_internal_value(data.upper() if isinstance(data, str) else data)


class UpperChoiceFieldExtension(InlineChoiceFieldExtension):
    target_class = UpperChoiceField  # extensions match their exact class, not subclasses


class OrderCreateSerializer(serializers.Serializer):
    symbol = serializers.CharField(max_length=40, help_text="BTCUSDT or BTC/USDT")
    exchange = serializers.CharField(
        max_length=40,
        required=False,
        help_text="Whose listing of the symbol to trade, when it is stored for several exchanges "
        "(e.g. coinbase after a replay copied it); a live order trades on its account's exchange",
    )
    side = UpperChoiceField(choices=[s.value for s in Side])
    type = UpperChoiceField(choices=[t.value for t in OrderType])
    quantity = serializers.DecimalField(**AMOUNT, min_value=0, help_text="In the base currency")
    price = serializers.DecimalField(
        **AMOUNT,
        min_value=0,
        required=False,
        allow_null=True,
        help_text="Limit price (LIMIT, STOP_LOSS_LIMIT); for MARKET the price expected, checked against "
        "the price band and never sent",
    )
    stop_price = serializers.DecimalField(**AMOUNT, min_value=0, required=False, allow_null=True)
    time_in_force = UpperChoiceField(choices=TimeInForce.values, default=TimeInForce.GTC)
    account = IdField(
        required=False,
        allow_null=True,
        help_text="Default: your paper account in the symbol's quote currency, opened by your first "
        "order in it with TRADING_PAPER_STARTING_BALANCES (or TRADING_PAPER_STARTING_CASH)",
    )
    client_order_id = serializers.CharField(max_length=36, required=False, allow_blank=True, default="")


class OrderQuerySerializer(serializers.Serializer):
    status = UpperChoiceField(choices=OrderStatus.values, required=False)
    symbol = serializers.CharField(max_length=40, required=False)
    account = IdField(required=False)


class AccountQuerySerializer(serializers.Serializer):
    account = IdField(required=False, help_text="Default: every account of yours")


class PortfolioQuerySerializer(serializers.Serializer):
    account = IdField(required=False, help_text="Default: your oldest account")


class HistoryQuerySerializer(AccountQuerySerializer):
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)


class StateChangeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class FillSerializer(serializers.ModelSerializer):
    side = InlineChoiceField(choices=[s.value for s in Side], read_only=True)

    class Meta:
        model = Fill
        fields = (
            "trade_id",
            "side",
            "quantity",
            "price",
            "fee",
            "fee_currency",
            "realised_pnl",
            "is_maker",
            "executed_at",
        )


class OrderSerializer(serializers.ModelSerializer):
    side = InlineChoiceField(choices=[s.value for s in Side], read_only=True)
    type = InlineChoiceField(choices=[t.value for t in OrderType], read_only=True)
    status = InlineChoiceField(choices=OrderStatus.values, read_only=True)
    source = InlineChoiceField(choices=OrderSource.values, read_only=True)
    time_in_force = InlineChoiceField(choices=TimeInForce.values, read_only=True)
    symbol = serializers.CharField(source="instrument.symbol")
    exchange = serializers.CharField(source="instrument.exchange")
    strategy_id = serializers.CharField(source="strategy.strategy_id", default=None)
    fills = FillSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = (
            "id", "account", "client_order_id", "exchange_order_id", "symbol", "exchange", "side", "type",
            "quantity", "price", "stop_price", "time_in_force", "status", "filled_quantity", "average_price",
            "fees", "fee_currency", "reject_code", "reject_reason", "source", "created_by", "strategy_id",
            "parent", "oco_group", "created_at", "updated_at", "submitted_at", "closed_at", "fills",
        )  # fmt: skip


class AccountSerializer(serializers.ModelSerializer):
    kind = InlineChoiceField(choices=AccountKind.values, read_only=True)
    trading_state = InlineChoiceField(choices=[s.value for s in TradingState], read_only=True)
    has_api_keys = serializers.BooleanField(read_only=True)

    class Meta:
        model = Account
        fields = (
            "id", "name", "kind", "exchange", "quote_currency", "starting_cash", "cash", "trading_state",
            "state_reason", "state_changed_at", "auto_trading", "has_api_keys", "paper_fee_rate",
            "paper_slippage", "max_order_notional", "max_position_notional", "max_position_pct",
            "max_exposure_pct", "max_open_orders", "max_open_positions", "price_band_pct",
            "max_orders_per_minute", "max_daily_loss_pct", "max_drawdown_pct", "created_at",
        )  # fmt: skip


class AccountBriefSerializer(serializers.ModelSerializer):
    kind = InlineChoiceField(choices=AccountKind.values, read_only=True)
    trading_state = InlineChoiceField(choices=[s.value for s in TradingState], read_only=True)

    class Meta:
        model = Account
        fields = ("id", "name", "kind", "exchange", "quote_currency", "trading_state")


def position_data(row: PositionRow) -> dict[str, Any]:
    position, marked = row.position, row.marked
    return {
        "account": position.account_id,
        "symbol": position.instrument.symbol,
        "exchange": position.instrument.exchange,
        "quantity": position.quantity,
        "average_entry": position.average_entry,
        "cost_basis": position.cost_basis,
        "mark_price": marked.mark,
        "market_value": marked.value,
        "unrealised_pnl": marked.unrealised,
        "unrealised_pct": row.unrealised_pct,
        "realised_pnl": position.realised_pnl,
        "weight": row.weight,
        "opened_at": position.opened_at,
        "allocation": position.allocation_id,
    }


class PositionSerializer(serializers.Serializer):
    account = serializers.IntegerField(help_text="The account holding it")
    symbol = serializers.CharField()
    exchange = serializers.CharField()
    quantity = serializers.DecimalField(**AMOUNT)
    average_entry = serializers.DecimalField(**AMOUNT, allow_null=True)
    cost_basis = serializers.DecimalField(**AMOUNT)
    mark_price = serializers.DecimalField(**AMOUNT, allow_null=True, help_text="Last price; null: none known")
    market_value = serializers.DecimalField(**AMOUNT)
    unrealised_pnl = serializers.DecimalField(**AMOUNT)
    unrealised_pct = serializers.DecimalField(max_digits=14, decimal_places=6, help_text="Fraction of cost")
    realised_pnl = serializers.DecimalField(**AMOUNT)
    weight = serializers.DecimalField(max_digits=14, decimal_places=6, help_text="Fraction of equity")
    opened_at = serializers.DateTimeField(allow_null=True)
    allocation = serializers.IntegerField(
        allow_null=True, help_text="The allocation whose book it is; null: manual"
    )


class WalletLineSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    name = serializers.CharField()
    kind = InlineChoiceField(choices=AccountKind.values)
    quote_currency = serializers.CharField()
    cash = serializers.DecimalField(**AMOUNT)
    equity = serializers.DecimalField(**AMOUNT)
    total_pnl = serializers.DecimalField(**AMOUNT)


class PortfolioSerializer(serializers.Serializer):
    """One account's figures and positions (the one named, else your oldest), and ``wallet``: every
    account of yours, one line each. Without any account: null, zeros and empty lists."""

    account = AccountBriefSerializer(allow_null=True, help_text="null: you have no account yet")
    starting_cash = serializers.DecimalField(**AMOUNT)
    cash = serializers.DecimalField(**AMOUNT)
    positions_value = serializers.DecimalField(**AMOUNT)
    equity = serializers.DecimalField(**AMOUNT)
    unrealised_pnl = serializers.DecimalField(**AMOUNT)
    realised_pnl = serializers.DecimalField(**AMOUNT)
    total_pnl = serializers.DecimalField(**AMOUNT)
    daily_pnl = serializers.DecimalField(**AMOUNT)
    exposure = serializers.DecimalField(max_digits=14, decimal_places=6, help_text="Positions / equity")
    drawdown = serializers.DecimalField(
        max_digits=14, decimal_places=6, help_text="Fall from the peak equity"
    )
    peak_equity = serializers.DecimalField(**AMOUNT)
    positions = PositionSerializer(many=True)
    wallet = WalletLineSerializer(many=True, help_text="Every account of yours, oldest first")


def _wallet_line(portfolio: Portfolio) -> dict[str, Any]:
    account, figures = portfolio.account, portfolio.figures
    return {
        "account": account.pk,
        "name": account.name,
        "kind": account.kind,
        "quote_currency": account.quote_currency,
        "cash": figures.cash,
        "equity": figures.equity,
        "total_pnl": figures.total_pnl,
    }


_FIGURES = (
    "starting_cash", "cash", "positions_value", "equity", "unrealised_pnl", "realised_pnl", "total_pnl",
    "daily_pnl", "exposure", "drawdown", "peak_equity",
)  # fmt: skip


def portfolio_data(wallet: Wallet) -> dict[str, Any]:
    lines = [_wallet_line(portfolio) for portfolio in wallet.portfolios]
    if wallet.shown is None:  # nothing opened yet: an empty portfolio, not a new account
        return {"account": None, **dict.fromkeys(_FIGURES, ZERO), "positions": [], "wallet": lines}
    portfolio = wallet.shown
    figures = portfolio.figures
    return {
        "account": portfolio.account,
        "starting_cash": portfolio.account.starting_cash,
        "cash": figures.cash,
        "positions_value": figures.positions_value,
        "equity": figures.equity,
        "unrealised_pnl": figures.unrealised_pnl,
        "realised_pnl": figures.realised_pnl,
        "total_pnl": figures.total_pnl,
        "daily_pnl": figures.daily_pnl,
        "exposure": figures.exposure,
        "drawdown": figures.drawdown,
        "peak_equity": figures.peak_equity,
        "positions": [position_data(row) for row in portfolio.rows],
        "wallet": lines,
    }


class SnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = PortfolioSnapshot
        fields = (
            "account", "time", "cash", "positions_value", "equity", "unrealised_pnl", "realised_pnl",
            "total_pnl", "daily_pnl", "exposure", "drawdown", "positions",
        )  # fmt: skip


class AccountChangeSerializer(serializers.Serializer):
    auto_trading = serializers.BooleanField(required=False, help_text="Strategies allocated to it may trade")
    auto_allocate = serializers.BooleanField(
        required=False,
        help_text="The lifecycle policy: active strategies that can trade here get a share automatically, "
        "retired ones are wound down",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("give auto_trading and/or auto_allocate")
        return attrs


class LifecycleStepSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    action = InlineChoiceField(choices=["allocate", "wind_down"])
    strategy_id = serializers.CharField()
    reason = serializers.CharField()
    allocation = serializers.IntegerField(allow_null=True)
    blocked = serializers.CharField(help_text="Why it cannot be done now; empty: it can")


class LifecycleSerializer(serializers.Serializer):
    policy = serializers.BooleanField(help_text="Whether the lifecycle policy acts on this account")
    allowed = serializers.BooleanField(help_text="TRADING_AUTO_ALLOCATE: whether the operator allows it")
    plan = LifecycleStepSerializer(
        many=True, help_text="What the policy does at the next cycle, or (policy off) what waits for you"
    )


class AccountDetailSerializer(AccountSerializer):
    lifecycle = serializers.SerializerMethodField()

    class Meta(AccountSerializer.Meta):
        fields = (*AccountSerializer.Meta.fields, "auto_allocate", "lifecycle")

    @extend_schema_field(LifecycleSerializer)
    def get_lifecycle(self, account: Account) -> dict[str, Any]:
        return {
            "policy": policy_on(account),
            "allowed": bool(settings.TRADING_AUTO_ALLOCATE),
            "plan": [step.to_dict() for step in lifecycle_plan(account=account)],
        }


class AllocationSerializer(serializers.ModelSerializer):
    strategy_id = serializers.CharField(source="strategy.strategy_id")
    strategy_status = serializers.CharField(source="strategy.status")
    symbol = serializers.CharField(source="strategy.instrument.symbol")
    timeframe = serializers.CharField(source="strategy.timeframe")
    book_quantity = serializers.DecimalField(
        **AMOUNT, read_only=True, help_text="What its own book holds of the strategy's instrument"
    )

    class Meta:
        model = StrategyAllocation
        fields = (
            "id", "account", "strategy_id", "strategy_status", "symbol", "timeframe", "capital_pct",
            "enabled", "winding_down", "book_quantity", "note", "created_by", "created_at",
        )  # fmt: skip
        read_only_fields = fields


class AllocationCreateSerializer(serializers.Serializer):
    strategy_id = serializers.CharField(max_length=64)
    account = IdField(
        required=False,
        allow_null=True,
        help_text="Default: your paper account in the strategy's quote currency (opened if you have none)",
    )
    capital_pct = serializers.DecimalField(
        max_digits=9, decimal_places=6, min_value=Decimal("0.000001"), max_value=Decimal(1),
        help_text="Share of the account's equity its position sizing starts from (0 to 1]",
    )  # fmt: skip
    enabled = serializers.BooleanField(default=True)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class AllocationChangeSerializer(serializers.Serializer):
    capital_pct = serializers.DecimalField(
        max_digits=9, decimal_places=6, min_value=Decimal("0.000001"), max_value=Decimal(1), required=False
    )
    enabled = serializers.BooleanField(
        required=False, help_text="Off keeps its book as it is; DELETE closes it"
    )
    note = serializers.CharField(max_length=300, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("give capital_pct, enabled and/or note")
        return attrs


class AllocationQuerySerializer(serializers.Serializer):
    account = IdField(required=False)
    strategy_id = serializers.CharField(max_length=64, required=False)
    enabled = serializers.BooleanField(required=False, allow_null=True, default=None)


class CycleSerializer(serializers.ModelSerializer):
    status = serializers.CharField()

    class Meta:
        model = OrchestratorCycle
        fields = (
            "id", "trigger", "status", "acted", "orders_placed", "orders_refused", "summary", "error",
            "created_at", "started_at", "finished_at",
        )  # fmt: skip
        read_only_fields = fields


class ActionSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="allocation.account_id")
    strategy_id = serializers.CharField(source="allocation.strategy.strategy_id")

    class Meta:
        model = StrategyAction
        fields = (
            "id", "allocation", "account", "strategy_id", "candle_time", "signal", "decision", "order",
            "cycle", "created_at",
        )  # fmt: skip
        read_only_fields = fields


class RecordQuerySerializer(serializers.Serializer):
    account = IdField(required=False)
    allocation = IdField(required=False)
    strategy_id = serializers.CharField(max_length=64, required=False)


class PerformanceSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="allocation.account_id")
    strategy_id = serializers.CharField(source="allocation.strategy.strategy_id")

    class Meta:
        model = StrategyPerformance
        fields = (
            "id", "allocation", "account", "strategy_id", "time", "realised_pnl", "unrealised_pnl",
            "total_pnl", "return_pct", "drawdown_pct", "trades", "backtest_return_pct",
        )  # fmt: skip
        read_only_fields = fields
