"""Shapes of the trading API. Money and quantities travel as decimal strings; keys never travel."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from apps.trading.domain.fills import OrderType, Side
from apps.trading.domain.risk_rules import TradingState
from apps.trading.models import (
    Account,
    AccountKind,
    Fill,
    Order,
    OrderSource,
    OrderStatus,
    PortfolioSnapshot,
    TimeInForce,
)
from apps.trading.selectors import Portfolio, PositionRow

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
    account = serializers.IntegerField(
        required=False, allow_null=True, help_text="Default: your first account"
    )
    client_order_id = serializers.CharField(max_length=36, required=False, allow_blank=True, default="")


class OrderQuerySerializer(serializers.Serializer):
    status = UpperChoiceField(choices=OrderStatus.values, required=False)
    symbol = serializers.CharField(max_length=40, required=False)
    account = serializers.IntegerField(required=False)


class AccountQuerySerializer(serializers.Serializer):
    account = serializers.IntegerField(required=False)


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
            "fees", "fee_currency", "reject_code", "reject_reason", "source", "strategy_id", "parent",
            "oco_group", "created_at", "updated_at", "submitted_at", "closed_at", "fills",
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
    }


class PositionSerializer(serializers.Serializer):
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


class PortfolioSerializer(serializers.Serializer):
    account = AccountBriefSerializer()
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


def portfolio_data(portfolio: Portfolio) -> dict[str, Any]:
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
    }


class SnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = PortfolioSnapshot
        fields = (
            "time", "cash", "positions_value", "equity", "unrealised_pnl", "realised_pnl", "total_pnl",
            "daily_pnl", "exposure", "drawdown", "positions",
        )  # fmt: skip
