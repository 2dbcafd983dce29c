"""Writes of the trading app, one module per use case.

``accounts`` (create, find, halt and resume), ``orders`` (input, idempotency, placement through the
risk manager, protective orders, cancels), ``submission`` (a live order sent to the exchange once),
``reconciliation`` (a live account repaired from its exchange), ``paper_matching`` (resting paper
orders against new candles) and ``snapshots`` (portfolio snapshots, which apply the loss limits).
``risk_gate`` is what they share: the pure risk rules applied under the account's lock.

Every change to an account's cash, positions or orders happens in a transaction holding the
account's row lock. Exchange calls are made outside it.
"""

# The Celery tasks of workers/trading.py call these as ``services.<name>``; each has its task's own
# name, so importing it by name there would shadow the task. Other callers import from its module.
from apps.trading.services.orders import idempotency_keys_prune
from apps.trading.services.paper_matching import paper_orders_match
from apps.trading.services.reconciliation import account_reconcile
from apps.trading.services.snapshots import portfolio_snapshot_all
from apps.trading.services.submission import order_submit

__all__ = [
    "account_reconcile",
    "idempotency_keys_prune",
    "order_submit",
    "paper_orders_match",
    "portfolio_snapshot_all",
]
