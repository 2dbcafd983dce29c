"""Writes of the trading app, one module per use case.

``accounts`` (create, halt and resume), ``wallet`` (a user's paper account per quote currency, opened
by their first order in it), ``orders`` (input, idempotency, placement through the
risk manager, protective orders, cancels), ``submission`` (a live order sent to the exchange once),
``reconciliation`` (a live account repaired from its exchange), ``paper_matching`` (resting paper
orders against new candles) and ``snapshots`` (portfolio snapshots, which apply the loss limits).
``risk_gate`` is what they share: the pure risk rules applied under the account's lock.

Every change to an account's cash, positions or orders happens in a transaction holding the
account's row lock. Exchange calls are made outside it.
"""
