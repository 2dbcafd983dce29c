"""Trading tasks (the ``orders`` queue): live order submission, reconciliation, paper matching, the
orchestrator, portfolio snapshots and the performance monitor.

Submission is safe to repeat: a task only sends an order it moves from NEW to SUBMITTING itself, so
enqueuing one twice (a redelivery, the reconciliation's sweep) sends it once.
"""

from __future__ import annotations

from celery import shared_task

from apps.trading import orchestrator, performance, selectors
from apps.trading.errors import ExchangeUnavailable
from apps.trading.models import OrderStatus
from apps.trading.services import orders, paper_matching, reconciliation, snapshots, submission
from workers.periodic import once_per_slot
from workers.strategies import ml_series_prepare


@shared_task(
    name="trading.order_submit", autoretry_for=(ExchangeUnavailable,), retry_backoff=5, max_retries=3
)
def order_submit(order_id: int) -> None:
    """Send a NEW live order once; then the protective orders its fill called for."""
    order = submission.order_submit(order_id=order_id)
    if order is not None:
        for child in order.children.filter(status=OrderStatus.NEW).values_list("pk", flat=True):
            order_submit.delay(child)


@shared_task(name="trading.orders_reconcile_all")
@once_per_slot
def orders_reconcile_all() -> None:
    """Beat-driven: reconcile every live account (when live trading is on)."""
    for account in selectors.live_accounts_to_reconcile():
        account_reconcile.delay(account.pk)


@shared_task(
    name="trading.account_reconcile", autoretry_for=(ExchangeUnavailable,), retry_backoff=10, max_retries=2
)
def account_reconcile(account_id: int) -> None:
    """Sync one live account with its exchange; then submit its live orders still waiting."""
    account = selectors.account_get(account_id=account_id)
    if account is None:
        return
    reconciliation.account_reconcile(account=account)
    for order_id in selectors.orders_awaiting_submission(account=account, min_age_seconds=0):
        order_submit.delay(order_id)


@shared_task(name="trading.paper_orders_match")
@once_per_slot
def paper_orders_match() -> None:
    """Beat-driven: match resting paper orders against the candles stored since."""
    paper_matching.paper_orders_match()


@shared_task(name="trading.orchestrator_run")
@once_per_slot
def orchestrator_run() -> None:
    """Beat-driven: each active strategy acts on its newest candle (at most once per candle)."""
    result = orchestrator.orchestrator_run()
    for order_id in result.live_orders:
        order_submit.delay(order_id)
    for strategy_id in result.series_needed:
        ml_series_prepare.delay(strategy_id)


@shared_task(name="trading.portfolio_snapshot_all")
@once_per_slot
def portfolio_snapshot_all() -> None:
    """Beat-driven: a portfolio snapshot of every account (applying the loss limits)."""
    snapshots.portfolio_snapshot_all()


@shared_task(name="trading.performance_record_all")
@once_per_slot
def performance_record_all() -> None:
    """Beat-driven: each strategy's live PnL and drawdown, beside its backtest hourly."""
    performance.performance_record_all()


@shared_task(name="trading.idempotency_keys_prune")
@once_per_slot
def idempotency_keys_prune() -> None:
    orders.idempotency_keys_prune()
