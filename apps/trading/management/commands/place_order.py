"""Place an order through the risk manager: `place_order --account 1 --symbol BTCUSDT --side BUY ...`,
or with `--user NAME` on that user's paper wallet account of the symbol's quote currency."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import TemporaryError
from apps.trading import selectors
from apps.trading.domain.fills import OrderType, Side
from apps.trading.errors import AccountNotFound, OrderInputError
from apps.trading.models import OrderSource, OrderStatus, TimeInForce
from apps.trading.services.orders import Placement, order_place
from apps.trading.services.submission import order_submit
from apps.trading.services.wallet import wallet_order_place


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise CommandError(f"{text!r} is not a number") from None


class Command(BaseCommand):
    help = "Place one order on an account; a live order is sent to the exchange at once."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--account", type=int, help="Account id")
        target.add_argument(
            "--user",
            help="Username: their paper account in the symbol's quote currency (opened by a first order)",
        )
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--side", required=True, type=str.upper, choices=[s.value for s in Side])
        parser.add_argument("--type", required=True, type=str.upper, choices=[t.value for t in OrderType])
        parser.add_argument("--quantity", required=True, type=_decimal)
        parser.add_argument("--price", type=_decimal, default=None)
        parser.add_argument("--stop-price", type=_decimal, default=None)
        parser.add_argument(
            "--time-in-force", type=str.upper, choices=TimeInForce.values, default=TimeInForce.GTC
        )
        parser.add_argument("--client-order-id", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            placement = self._place(options)
        except (OrderInputError, AccountNotFound) as error:
            raise CommandError(f"{error} (nothing was stored)") from None
        order = placement.order
        account = order.account
        if placement.refusal is not None:
            refusal = placement.refusal
            raise CommandError(f"order {order.pk} refused: {refusal.code}: {refusal.message}")
        if placement.created and account.is_live and order.status == OrderStatus.NEW:
            try:
                order = order_submit(order_id=order.pk) or order
            except TemporaryError as error:
                raise CommandError(
                    f"order {order.pk} not sent, the exchange is unreachable: {error}"
                ) from None
        order.refresh_from_db()
        replay = "" if placement.created else " (an earlier order with this client order id)"
        self.stdout.write(
            f"order {order.pk}{replay}: {order.side} {order.quantity} {order.instrument.symbol} {order.type} "
            f"-> {order.status}, filled {order.filled_quantity} @ {order.average_price or '-'}"
            + (f" ({order.reject_code}: {order.reject_reason})" if order.reject_code else "")
            + f" on account {account.pk} ({account.name})"
        )

    def _place(self, options: dict[str, Any]) -> Placement:
        order = {
            "symbol": options["symbol"],
            "side": options["side"],
            "type": options["type"],
            "quantity": options["quantity"],
            "price": options["price"],
            "stop_price": options["stop_price"],
            "time_in_force": options["time_in_force"],
            "client_order_id": options["client_order_id"],
            "source": OrderSource.COMMAND,
            "created_by": "place_order command",
        }
        if options["user"] is not None:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"no user {options['user']!r}")
            return wallet_order_place(user=user, **order)
        account = selectors.account_get(account_id=options["account"])
        if account is None:
            raise CommandError(f"no account {options['account']}")
        return order_place(account=account, **order)
