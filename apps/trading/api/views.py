"""Trading endpoints of the brief: trades (orders) with their fills, positions, the portfolio and its
history, and the staff-only kill switch."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import error_body, validated
from apps.core.dispatch import send_on_commit
from apps.core.symbols import normalise_symbol
from apps.trading import selectors
from apps.trading.api.serializers import (
    AccountQuerySerializer,
    AccountSerializer,
    HistoryQuerySerializer,
    OrderCreateSerializer,
    OrderQuerySerializer,
    OrderSerializer,
    PortfolioSerializer,
    PositionSerializer,
    SnapshotSerializer,
    StateChangeSerializer,
    portfolio_data,
    position_data,
)
from apps.trading.errors import AccountNotFound, ExchangeUnavailable, OrderInputError, OrderNotCancelable
from apps.trading.models import Account, AccountKind, Order, OrderStatus, PortfolioSnapshot
from apps.trading.services.accounts import account_for, account_halt, account_resume
from apps.trading.services.orders import IdempotencyConflict, Placement, order_cancel, order_place
from workers.trading import order_submit

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_LENGTH = 255


def _account(request: Request, account_id: int | None) -> Account:
    try:
        return account_for(user=request.user, account_id=account_id)
    except AccountNotFound as error:
        raise Http404(str(error)) from None


def _error(status_code: int, code: str, message: str, **extra: Any) -> Response:
    body = error_body(code, message)
    body["error"].update(extra)
    return Response(body, status=status_code)


def _placement_response(placement: Placement) -> Response:
    order, refusal = placement.order, placement.refusal
    headers = {} if placement.created else {"Idempotent-Replayed": "true"}
    if refusal is not None:
        response = _error(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            refusal.code,
            refusal.message,
            limit=refusal.limit,
            limit_value=refusal.limit_value,
            actual=refusal.actual,
            order=OrderSerializer(order).data,
        )
        for name, value in headers.items():
            response[name] = value
        return response
    return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED, headers=headers)


class TradesView(generics.ListAPIView):
    """GET: the user's orders with their fills, newest first (``?status=FILLED&symbol=BTCUSDT&limit=100``).
    POST: place an order (201); the same ``Idempotency-Key`` or ``client_order_id`` returns the first."""

    serializer_class = OrderSerializer

    def get_queryset(self) -> QuerySet[Order]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return Order.objects.none()
        query = validated(OrderQuerySerializer, self.request.query_params)
        accounts = selectors.account_list(user=self.request.user)
        if "account" in query:
            accounts = accounts.filter(pk=query["account"])
        orders = selectors.order_list(accounts=accounts).prefetch_related("fills").select_related("strategy")
        if "status" in query:
            orders = orders.filter(status=query["status"])
        if "symbol" in query:
            orders = orders.filter(instrument__symbol=normalise_symbol(query["symbol"]))
        return orders

    @extend_schema(
        request=OrderCreateSerializer,
        responses={201: OrderSerializer},
        parameters=[OpenApiParameter(IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False)],
    )
    def post(self, request: Request) -> Response:
        data = validated(OrderCreateSerializer, request.data)
        key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
        if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            raise ValidationError({IDEMPOTENCY_HEADER: [f"at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters"]})
        try:
            account = account_for(user=request.user, account_id=data.pop("account", None))
        except AccountNotFound as error:
            raise ValidationError({"account": [str(error)]}) from None
        try:
            placement = order_place(account=account, user=request.user, idempotency_key=key, **data)
        except OrderInputError as error:
            raise ValidationError({error.field: [error.message]}) from None
        except IdempotencyConflict as error:
            return _error(status.HTTP_422_UNPROCESSABLE_ENTITY, "idempotency_key_reused", str(error))
        order = placement.order
        if placement.created and account.kind == AccountKind.LIVE and order.status == OrderStatus.NEW:
            send_on_commit(order_submit, [order.pk])
        return _placement_response(placement)


class TradeDetailView(APIView):
    @extend_schema(responses=OrderSerializer)
    def get(self, request: Request, order_id: int) -> Response:
        try:
            order = selectors.order_get(user=request.user, order_id=order_id)
        except Order.DoesNotExist:
            raise Http404 from None
        return Response(OrderSerializer(order).data)


class TradeCancelView(APIView):
    """Cancel an order that may still fill (a live one resting on the exchange is canceled there)."""

    @extend_schema(request=None, responses=OrderSerializer)
    def post(self, request: Request, order_id: int) -> Response:
        try:
            order = order_cancel(order=selectors.order_get(user=request.user, order_id=order_id))
        except Order.DoesNotExist:
            raise Http404 from None
        except OrderNotCancelable as error:
            return _error(status.HTTP_409_CONFLICT, "not_cancelable", str(error))
        except ExchangeUnavailable as error:
            return _error(status.HTTP_503_SERVICE_UNAVAILABLE, "exchange_unavailable", str(error))
        return Response(OrderSerializer(order).data)


class PositionsView(APIView):
    """Open positions of an account (``?account=``; default your first) at their last prices."""

    @extend_schema(parameters=[AccountQuerySerializer], responses=PositionSerializer(many=True))
    def get(self, request: Request) -> Response:
        account = _account(request, validated(AccountQuerySerializer, request.query_params).get("account"))
        rows = selectors.portfolio(account=account).rows
        return Response(PositionSerializer([position_data(row) for row in rows], many=True).data)


class PortfolioView(APIView):
    """Cash, equity, positions value, unrealised/realised/total/daily PnL, exposure, drawdown, positions."""

    @extend_schema(parameters=[AccountQuerySerializer], responses=PortfolioSerializer)
    def get(self, request: Request) -> Response:
        account = _account(request, validated(AccountQuerySerializer, request.query_params).get("account"))
        return Response(PortfolioSerializer(portfolio_data(selectors.portfolio(account=account))).data)


class PortfolioHistoryView(generics.ListAPIView):
    """Portfolio snapshots, oldest first (``?start=&end=&limit=``)."""

    serializer_class = SnapshotSerializer

    @extend_schema(parameters=[HistoryQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[PortfolioSnapshot]:
        if getattr(self, "swagger_fake_view", False):
            return PortfolioSnapshot.objects.none()
        query = validated(HistoryQuerySerializer, self.request.query_params)
        account = _account(self.request, query.get("account"))
        return selectors.snapshot_list(account=account, start=query.get("start"), end=query.get("end"))


class AccountsView(generics.ListAPIView):
    """The user's trading accounts with their risk limits (exchange keys are never shown)."""

    serializer_class = AccountSerializer

    def get_queryset(self) -> QuerySet[Account]:
        if getattr(self, "swagger_fake_view", False):
            return Account.objects.none()
        return selectors.account_list(user=self.request.user)


class _StateView(APIView):
    permission_classes = (IsAdminUser,)
    change = staticmethod(account_halt)

    @extend_schema(request=StateChangeSerializer, responses=AccountSerializer)
    def post(self, request: Request, account_id: int) -> Response:
        reason = validated(StateChangeSerializer, request.data)["reason"]
        account = selectors.account_get(account_id=account_id)
        if account is None:
            raise Http404
        self.change(account=account, by=request.user, reason=reason)
        account.refresh_from_db()
        return Response(AccountSerializer(account).data)


class AccountHaltView(_StateView):
    """Staff only: the kill switch. Nothing new reaches the broker until the account is resumed."""

    change = staticmethod(account_halt)


class AccountResumeView(_StateView):
    """Staff only: trading resumes; the drawdown peak restarts from the equity now."""

    change = staticmethod(account_resume)
