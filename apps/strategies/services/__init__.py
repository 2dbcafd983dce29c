"""Writes of the strategies app, one module per use case: ``strategies`` (documents, versions and
decisions), ``backtests``, ``optimizations``, ``daily_update`` and ``generation``.

Services validate before they write: bad input raises
:class:`apps.strategies.errors.StrategyInputError` naming each field, and nothing is stored. Jobs
claim their row first (``apps.core.jobs``), so a redelivered task does nothing twice. Callers
enqueue the work; services never do.
"""
