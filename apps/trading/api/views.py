"""Trading endpoints: trades (orders) with their fills, positions, the portfolio and its history, the
staff-only kill switch, accounts' auto-trading and lifecycle policy, strategy allocations, and the
orchestrator's records (cycles, strategy actions, per-allocation performance)."""

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
from apps.strategies import selectors as strategy_selectors
from apps.strategies.models import Strategy
from apps.trading import selectors
from apps.trading.api.serializers import (
    AccountChangeSerializer,
    AccountDetailSerializer,
    AccountQuerySerializer,
    AccountSerializer,
    ActionSerializer,
    AllocationChangeSerializer,
    AllocationCreateSerializer,
    AllocationQuerySerializer,
    AllocationSerializer,
    CycleSerializer,
    HistoryQuerySerializer,
    OrderCreateSerializer,
    OrderQuerySerializer,
    OrderSerializer,
    PerformanceSerializer,
    PortfolioQuerySerializer,
    PortfolioSerializer,
    PositionSerializer,
    RecordQuerySerializer,
    SnapshotSerializer,
    StateChangeSerializer,
    portfolio_data,
    position_data,
)
from apps.trading.errors import AccountNotFound, ExchangeUnavailable, OrderInputError, OrderNotCancelable
from apps.trading.models import (
    Account,
    AccountKind,
    OrchestratorCycle,
    Order,
    OrderStatus,
    PortfolioSnapshot,
    StrategyAction,
    StrategyAllocation,
    StrategyPerformance,
)
from apps.trading.services.accounts import account_change, account_halt, account_resume
from apps.trading.services.allocations import (
    AllocationRefused,
    allocation_change,
    allocation_create,
    allocation_wind_down,
)
from apps.trading.services.orders import IdempotencyConflict, Placement, order_cancel, order_place
from apps.trading.services.wallet import wallet_allocation_create, wallet_order_place
from workers.trading import order_submit

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_LENGTH = 255


def _accounts(request: Request, account_id: int | None) -> QuerySet[Account]:
    """The account named (a 404 if it is not the user's), or every account of the user."""
    accounts = selectors.account_list(user=request.user)
    if account_id is None:
        return accounts
    if not accounts.filter(pk=account_id).exists():
        raise Http404(f"you have no trading account {account_id}")
    return accounts.filter(pk=account_id)


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
    POST: place an order (201); the same ``Idempotency-Key`` or ``client_order_id`` returns the first.
    Without ``account`` it goes to your paper account in the symbol's quote currency, opened by your
    first order in that currency; an ``account`` holding another currency is a 400."""

    serializer_class = OrderSerializer

    @extend_schema(parameters=[OrderQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

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
        account_id = data.pop("account", None)
        data["listing"] = data.pop("exchange", None)
        who = {"user": request.user, "created_by": request.user.get_username(), "idempotency_key": key}
        try:
            if account_id is None:
                placement = wallet_order_place(**who, **data)
            else:
                account = selectors.account_of(user=request.user, account_id=account_id)
                placement = order_place(account=account, **who, **data)
        except AccountNotFound as error:
            raise ValidationError({"account": [str(error)]}) from None
        except OrderInputError as error:
            raise ValidationError({error.field: [error.message]}) from None
        except IdempotencyConflict as error:
            return _error(status.HTTP_422_UNPROCESSABLE_ENTITY, "idempotency_key_reused", str(error))
        order = placement.order
        if placement.created and order.account.kind == AccountKind.LIVE and order.status == OrderStatus.NEW:
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
    """Open positions at their last prices: of the account named (``?account=``), else of every account
    of yours, each naming its account. No account yet: an empty list."""

    @extend_schema(parameters=[AccountQuerySerializer], responses=PositionSerializer(many=True))
    def get(self, request: Request) -> Response:
        account_id = validated(AccountQuerySerializer, request.query_params).get("account")
        try:
            rows = selectors.wallet_positions(user=request.user, account_id=account_id)
        except AccountNotFound as error:
            raise Http404(str(error)) from None
        return Response(PositionSerializer([position_data(row) for row in rows], many=True).data)


class PortfolioView(APIView):
    """Cash, equity, positions value, unrealised/realised/total/daily PnL, exposure, drawdown and
    positions of the account named (``?account=``), else of your oldest; ``wallet`` lists every
    account of yours with its currency, cash and equity. No account yet: zeros and empty lists."""

    @extend_schema(parameters=[PortfolioQuerySerializer], responses=PortfolioSerializer)
    def get(self, request: Request) -> Response:
        account_id = validated(PortfolioQuerySerializer, request.query_params).get("account")
        try:
            wallet = selectors.wallet(user=request.user, account_id=account_id)
        except AccountNotFound as error:
            raise Http404(str(error)) from None
        return Response(PortfolioSerializer(portfolio_data(wallet)).data)


class PortfolioHistoryView(generics.ListAPIView):
    """Portfolio snapshots, oldest first (``?start=&end=&limit=``): of the account named
    (``?account=``), else of every account of yours, each naming its account."""

    serializer_class = SnapshotSerializer

    @extend_schema(parameters=[HistoryQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[PortfolioSnapshot]:
        if getattr(self, "swagger_fake_view", False):
            return PortfolioSnapshot.objects.none()
        query = validated(HistoryQuerySerializer, self.request.query_params)
        accounts = _accounts(self.request, query.get("account"))
        return selectors.snapshots_of(accounts=accounts, start=query.get("start"), end=query.get("end"))


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


def _visible_account(request: Request, account_id: int) -> Account:
    """An account the user may see and change (their own; staff: any), or a 404."""
    account = selectors.accounts_visible(user=request.user).filter(pk=account_id).first()
    if account is None:
        raise Http404(f"no trading account {account_id} of yours")
    return account


class AccountDetailView(APIView):
    """GET: the account, with what the lifecycle policy will do (or, off, what waits for you).
    PATCH: turn auto-trading and the lifecycle policy on or off (the owner, or staff)."""

    @extend_schema(responses=AccountDetailSerializer)
    def get(self, request: Request, account_id: int) -> Response:
        return Response(AccountDetailSerializer(_visible_account(request, account_id)).data)

    @extend_schema(request=AccountChangeSerializer, responses=AccountDetailSerializer)
    def patch(self, request: Request, account_id: int) -> Response:
        changes = validated(AccountChangeSerializer, request.data)
        account = account_change(account=_visible_account(request, account_id), by=request.user, **changes)
        return Response(AccountDetailSerializer(account).data)


def _refused(error: AllocationRefused) -> ValidationError:
    return ValidationError({error.field: [error.message]})


def _allocation(request: Request, allocation_id: int) -> StrategyAllocation:
    accounts = selectors.accounts_visible(user=request.user)
    allocation = selectors.allocation_list(accounts=accounts).filter(pk=allocation_id).first()
    if allocation is None:
        raise Http404(f"no allocation {allocation_id} on your accounts")
    return allocation


def _fresh(allocation: StrategyAllocation) -> StrategyAllocation:
    return selectors.allocation_list(accounts=Account.objects.filter(pk=allocation.account_id)).get(
        pk=allocation.pk
    )


class AllocationsView(generics.ListAPIView):
    """GET: allocations on your accounts (``?account=&strategy_id=&enabled=``).
    POST: allocate a strategy a share of an account (201; without ``account``, your paper account in the
    strategy's quote currency, opened if you have none); 400 saying why when it could never trade
    there (draft or retired strategy, another quote currency, another exchange than a live account's)
    or the account's enabled shares would pass 1."""

    serializer_class = AllocationSerializer

    @extend_schema(parameters=[AllocationQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[StrategyAllocation]:
        if getattr(self, "swagger_fake_view", False):
            return StrategyAllocation.objects.none()
        query = validated(AllocationQuerySerializer, self.request.query_params)
        allocations = selectors.allocation_list(accounts=selectors.accounts_visible(user=self.request.user))
        if "account" in query:
            allocations = allocations.filter(account_id=query["account"])
        if "strategy_id" in query:
            allocations = allocations.filter(strategy__strategy_id=query["strategy_id"])
        if query.get("enabled") is not None:
            allocations = allocations.filter(enabled=query["enabled"])
        return allocations

    @extend_schema(request=AllocationCreateSerializer, responses={201: AllocationSerializer})
    def post(self, request: Request) -> Response:
        data = validated(AllocationCreateSerializer, request.data)
        account = None
        if data.get("account") is not None:
            account = selectors.accounts_visible(user=request.user).filter(pk=data["account"]).first()
            if account is None:
                raise ValidationError({"account": [f"you have no trading account {data['account']}"]})
        try:
            strategy = strategy_selectors.strategy_get(strategy_id=data["strategy_id"], user=request.user)
        except Strategy.DoesNotExist:  # another user's strategy too: its existence does not leak
            raise ValidationError({"strategy_id": [f"no strategy {data['strategy_id']!r}"]}) from None
        allocation_fields = {
            "strategy": strategy,
            "capital_pct": data["capital_pct"],
            "enabled": data["enabled"],
            "by": request.user.get_username(),
            "note": data["note"],
        }
        try:
            if account is None:
                allocation = wallet_allocation_create(user=request.user, **allocation_fields)
            else:
                allocation = allocation_create(account=account, **allocation_fields)
        except AccountNotFound as error:
            raise ValidationError({"account": [str(error)]}) from None
        except AllocationRefused as error:
            raise _refused(error) from None
        return Response(AllocationSerializer(_fresh(allocation)).data, status=status.HTTP_201_CREATED)


class AllocationDetailView(APIView):
    """GET: one allocation. PATCH: its share, on/off (off keeps its book as it is) or note.
    DELETE: wind it down: its orders canceled and its position sold at the next closed candle, then
    switched off (at once when its book is flat); the row and its history stay."""

    @extend_schema(responses=AllocationSerializer)
    def get(self, request: Request, allocation_id: int) -> Response:
        return Response(AllocationSerializer(_allocation(request, allocation_id)).data)

    @extend_schema(request=AllocationChangeSerializer, responses=AllocationSerializer)
    def patch(self, request: Request, allocation_id: int) -> Response:
        changes = validated(AllocationChangeSerializer, request.data)
        allocation = _allocation(request, allocation_id)
        try:
            allocation_change(allocation=allocation, by=request.user.get_username(), **changes)
        except AllocationRefused as error:
            raise _refused(error) from None
        return Response(AllocationSerializer(_fresh(allocation)).data)

    @extend_schema(request=None, responses=AllocationSerializer)
    def delete(self, request: Request, allocation_id: int) -> Response:
        allocation = _allocation(request, allocation_id)
        allocation_wind_down(
            allocation=allocation, by=request.user.get_username(), reason="wound down through the API"
        )
        return Response(AllocationSerializer(_fresh(allocation)).data)


def _records_query(request: Request, records: QuerySet, account_field: str) -> QuerySet:
    query = validated(RecordQuerySerializer, request.query_params)
    if "account" in query:
        records = records.filter(**{account_field: query["account"]})
    if "allocation" in query:
        records = records.filter(allocation_id=query["allocation"])
    if "strategy_id" in query:
        records = records.filter(allocation__strategy__strategy_id=query["strategy_id"])
    return records


class ActionsView(generics.ListAPIView):
    """What each strategy did on each closed candle on your accounts, newest first
    (``?account=&allocation=&strategy_id=``): its signal, its decision and its order."""

    serializer_class = ActionSerializer

    @extend_schema(parameters=[RecordQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[StrategyAction]:
        if getattr(self, "swagger_fake_view", False):
            return StrategyAction.objects.none()
        records = selectors.action_list(accounts=selectors.accounts_visible(user=self.request.user))
        return _records_query(self.request, records, "allocation__account_id")


class PerformanceView(generics.ListAPIView):
    """Each allocation's results from its own fills at each snapshot slot, beside a backtest of the same
    version over the same window, newest first (``?account=&allocation=&strategy_id=``)."""

    serializer_class = PerformanceSerializer

    @extend_schema(parameters=[RecordQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[StrategyPerformance]:
        if getattr(self, "swagger_fake_view", False):
            return StrategyPerformance.objects.none()
        records = selectors.performance_list(accounts=selectors.accounts_visible(user=self.request.user))
        return _records_query(self.request, records, "allocation__account_id")


class _CycleSerializerForUser(CycleSerializer):
    """A cycle's summary narrowed to the user's allocations (staff see every entry)."""

    def to_representation(self, cycle: OrchestratorCycle) -> dict[str, Any]:
        data = super().to_representation(cycle)
        mine = self.context.get("allocations")
        if mine is not None:
            data["summary"] = [entry for entry in data["summary"] if entry.get("allocation") in mine]
        return data


def _cycle_context(request: Request, context: dict[str, Any]) -> dict[str, Any]:
    if not request.user.is_staff:
        accounts = selectors.accounts_visible(user=request.user)
        context["allocations"] = set(
            StrategyAllocation.objects.filter(account__in=accounts).values_list("pk", flat=True)
        )
    return context


class CyclesView(generics.ListAPIView):
    """The orchestrator's cycles, newest first: what each enabled allocation did or why it did not act,
    and the lifecycle policy's steps (your allocations' entries; staff see all)."""

    serializer_class = _CycleSerializerForUser

    def get_queryset(self) -> QuerySet[OrchestratorCycle]:
        return selectors.cycle_list()

    def get_serializer_context(self) -> dict[str, Any]:
        return _cycle_context(self.request, super().get_serializer_context())


class CycleDetailView(generics.RetrieveAPIView):
    """One orchestrator cycle."""

    serializer_class = _CycleSerializerForUser
    lookup_url_kwarg = "cycle_id"

    def get_queryset(self) -> QuerySet[OrchestratorCycle]:
        return selectors.cycle_list()

    def get_serializer_context(self) -> dict[str, Any]:
        return _cycle_context(self.request, super().get_serializer_context())
