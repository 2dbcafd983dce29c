"""Strategies, their versions and the decisions recorded about them (by users and by the system)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core import ownership
from apps.market.models import Instrument
from apps.strategies import documents, selectors
from apps.strategies.engine.robustness import ReturnMoments
from apps.strategies.errors import StrategyInputError, raise_if_problems
from apps.strategies.models import (
    DecisionKind,
    GenerationRun,
    Strategy,
    StrategyDecision,
    StrategySource,
    StrategyStatus,
    StrategyVersion,
)
from apps.strategies.services.trials import deflated_tests, deflation_verdict, gate_numbers

# A second strategy of the same name and symbol within one second takes the next free second.
ID_ATTEMPTS = 60

NEW_STRATEGY_ACTIVATION = (
    "activation refused: a new strategy has no backtest, and activation needs the current version's "
    "newest backtest with a deflated Sharpe ratio of at least STRATEGY_MIN_DEFLATED_SHARPE; create it "
    "as draft or paused, backtest it, then set its status to active"
)

# The actors of decisions the strategies app's jobs record (a user's decisions name the user).
DAILY_UPDATE = "daily update"
GENERATION = "strategy generation"


def strategy_id_for(*, name: str, symbol: str, moment: datetime) -> str:
    """``strategy_<Name_With_Underscores>_<SYMBOL>_<YYYYmmddHHMMSS>`` (UTC)."""
    words = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "Strategy"
    return f"strategy_{words}_{symbol}_{moment.astimezone(UTC):%Y%m%d%H%M%S}"


def strategy_create(
    *,
    name: str,
    type: str,
    instrument: Instrument,
    timeframe: str,
    parameters: dict[str, Any],
    indicators: list[str],
    rules: list[dict[str, Any]],
    status: str = StrategyStatus.DRAFT,
    source: str = StrategySource.USER,
    owner: ownership.User | None = None,
) -> Strategy:
    """Validate the document and store the strategy with its first version, owned by ``owner`` (the
    requesting user; None: the system, e.g. the daily update's generation or the demo data).

    The id carries the creation second; a second strategy of the same name and symbol within that
    second takes the next free second. Raises StrategyInputError for an invalid document, a market
    without candles in ``timeframe``, or ``status`` active: activation is judged on the current
    version's newest backtest (see :func:`strategy_update`), which a new strategy cannot have, so
    it is created draft or paused, backtested, then activated. A job that ran a gate of its own
    (generation's deflated holdout) activates what it created with :func:`strategy_status_set`.
    """
    if status == StrategyStatus.ACTIVE:
        raise StrategyInputError({"status": [NEW_STRATEGY_ACTIVATION]})
    if problem := selectors.series_problem(instrument=instrument, timeframe=timeframe):
        raise StrategyInputError({"timeframe": [problem]})
    raise_if_problems(documents.document_problems(parameters=parameters, indicators=indicators, rules=rules))
    with transaction.atomic():
        strategy = _insert_strategy(
            name=name,
            type=type,
            instrument=instrument,
            timeframe=timeframe,
            status=status,
            source=source,
            owner=owner,
        )
        strategy.current_version = StrategyVersion.objects.create(
            strategy=strategy,
            number=1,
            parameters=parameters,
            indicators=indicators,
            rules=rules,
            source=source,
            reason="created",
        )
        strategy.save(update_fields=["current_version"])
    return strategy


def _insert_strategy(**fields: Any) -> Strategy:
    moment = timezone.now()
    for offset in range(ID_ATTEMPTS):
        strategy_id = strategy_id_for(
            name=fields["name"], symbol=fields["instrument"].symbol, moment=moment + timedelta(seconds=offset)
        )
        try:
            with transaction.atomic():
                return Strategy.objects.create(strategy_id=strategy_id, **fields)
        except IntegrityError:
            if not Strategy.objects.filter(strategy_id=strategy_id).exists():
                raise
    raise StrategyInputError({"name": [f"too many strategies named {fields['name']!r} created this minute"]})


def strategy_update(
    *,
    strategy: Strategy,
    by: ownership.User | None,
    name: str | None = None,
    type: str | None = None,
    status: str | None = None,
    parameters: dict[str, Any] | None = None,
    indicators: list[str] | None = None,
    rules: list[dict[str, Any]] | None = None,
    reason: str = "",
) -> Strategy:
    """Edit a strategy as ``by`` (a user; None: the system). Changed parameters, indicators or rules
    become a new version (and an ``edited`` decision); a status change is recorded as a decision;
    each decision names ``by``.

    Activation needs evidence: the current version's newest backtest, its Sharpe ratio deflated by
    every trial of the strategy's family at least ``STRATEGY_MIN_DEFLATED_SHARPE``; otherwise a
    ``refused`` decision is recorded with the numbers, nothing else changes, and StrategyInputError
    (``status``) is raised.

    Raises, writing nothing: ``ownership.NotVisible`` or ``ChangeRefused`` when ``by`` may not change
    it (another user's, the system's, or one a live account trades: staff only), StrategyInputError
    for an invalid document.
    """
    actor = ownership.actor_name(by)
    try:
        return _strategy_update(
            strategy=strategy,
            by=by,
            actor=actor,
            name=name,
            type=type,
            status=status,
            parameters=parameters,
            indicators=indicators,
            rules=rules,
            reason=reason,
        )
    except _ActivationRefused as refusal:  # the edit was rolled back; the refusal is kept
        decision_record(strategy, DecisionKind.REFUSED, refusal.reason, refusal.numbers, actor=actor)
        raise StrategyInputError({"status": [refusal.reason]}) from None


class _ActivationRefused(Exception):
    def __init__(self, reason: str, numbers: dict[str, Any]) -> None:
        super().__init__(reason)
        self.reason, self.numbers = reason, numbers


def _strategy_update(
    *,
    strategy: Strategy,
    by: ownership.User | None,
    actor: str,
    name: str | None,
    type: str | None,
    status: str | None,
    parameters: dict[str, Any] | None,
    indicators: list[str] | None,
    rules: list[dict[str, Any]] | None,
    reason: str,
) -> Strategy:
    with transaction.atomic():
        strategy = Strategy.objects.select_for_update().get(pk=strategy.pk)
        ownership.change_check(obj=strategy, user=by, what=f"strategy {strategy.strategy_id}")
        current = strategy.current_version
        edited = {
            "parameters": current.parameters if parameters is None else parameters,
            "indicators": current.indicators if indicators is None else indicators,
            "rules": current.rules if rules is None else rules,
        }
        if edited != {
            "parameters": current.parameters,
            "indicators": current.indicators,
            "rules": current.rules,
        }:
            raise_if_problems(documents.document_problems(**edited))
            version = version_create(strategy, edited, StrategySource.USER, reason or "edited")
            decision_record(
                strategy,
                DecisionKind.EDITED,
                f"version {version.number} replaces version {current.number}"
                + (f": {reason}" if reason else ""),
                {"version": version.number, "previous_version": current.number},
                actor=actor,
            )
        strategy.name = strategy.name if name is None else name
        strategy.type = strategy.type if type is None else type
        if status is not None and status != strategy.status:
            numbers = None
            if status == StrategyStatus.ACTIVE:
                numbers = _activation_evidence(strategy)
            strategy_status_set(
                strategy, status, reason or f"set to {status} by {actor}", numbers, actor=actor
            )
        strategy.save()
    return Strategy.objects.select_related("instrument", "current_version").get(pk=strategy.pk)


def _activation_evidence(strategy: Strategy) -> dict[str, Any]:
    """The numbers that let a strategy be activated: its current version's newest backtest, its
    Sharpe ratio deflated by every trial its family holds now, and when an optimisation chose the
    version's parameters, that search's PBO. Raises ``_ActivationRefused`` (with the numbers) when
    there is no backtest, or the deflated Sharpe ratio or the PBO does not pass."""
    backtest = selectors.activation_backtest(strategy=strategy)
    if backtest is None:
        numbers = {"min_deflated_sharpe": settings.STRATEGY_MIN_DEFLATED_SHARPE}
        raise _ActivationRefused(
            f"activation refused: version {strategy.current_version.number} has no completed backtest "
            "with a robustness block; backtest it first",
            numbers,
        )
    stored = backtest.robustness
    moments = ReturnMoments(
        stored["observations"], stored["sharpe_per_bar"], stored["skewness"], stored["kurtosis"]
    )
    tests = deflated_tests(family=selectors.strategy_family(strategy=strategy), moments=moments)
    search = selectors.adopting_optimization(strategy=strategy)
    pbo = None if search is None else (search.robustness.get("pbo") or {}).get("pbo")
    numbers = {**gate_numbers(tests, pbo), "backtest": backtest.pk}
    if search is not None:
        numbers["optimization"] = search.pk
    if problem := deflation_verdict(deflated_sharpe=tests.deflated_sharpe, pbo=pbo):
        raise _ActivationRefused(
            f"activation refused on backtest {backtest.pk} ({tests.trials} trials in the family): {problem}",
            numbers,
        )
    return numbers


def strategy_delete(*, strategy: Strategy, by: ownership.User | None) -> bool:
    """Delete a draft nothing was recorded about and return True; retire any other strategy instead,
    keeping its versions, backtests and decisions, and return False. ``by`` must be allowed to change
    it (see :func:`strategy_update`)."""
    ownership.change_check(obj=strategy, user=by, what=f"strategy {strategy.strategy_id}")
    if strategy.status == StrategyStatus.DRAFT and not selectors.has_history(strategy=strategy):
        strategy.delete()
        return True
    if strategy.status != StrategyStatus.RETIRED:
        strategy_update(
            strategy=strategy, by=by, status=StrategyStatus.RETIRED, reason="retired on delete; history kept"
        )
    return False


def market_strategies_delete(*, instrument: Instrument) -> int:
    """Delete every strategy of ``instrument`` with all that was recorded about it (versions,
    backtests, optimisations, decisions, allocations) and the market's generation runs; returns how
    many strategies. Only for a market whose records are all disposable: a replay's, on reset."""
    with transaction.atomic():
        GenerationRun.objects.filter(instrument=instrument).delete()
        strategies = Strategy.objects.filter(instrument=instrument)
        count = strategies.count()
        strategies.delete()
    return count


def version_create(
    strategy: Strategy, document: Mapping[str, Any], source: str, reason: str
) -> StrategyVersion:
    """A new current version; the caller holds the strategy row lock and saves the strategy."""
    number = (strategy.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    version = StrategyVersion.objects.create(
        strategy=strategy, number=number, source=source, reason=reason[:500], **document
    )
    strategy.current_version = version
    return version


_STATUS_DECISIONS = {
    StrategyStatus.ACTIVE: DecisionKind.ACTIVATED,
    StrategyStatus.PAUSED: DecisionKind.PAUSED,
    StrategyStatus.RETIRED: DecisionKind.RETIRED,
    StrategyStatus.DRAFT: DecisionKind.EDITED,
}


def strategy_status_set(
    strategy: Strategy, status: str, reason: str, numbers: dict | None = None, *, actor: str, **links: Any
) -> None:
    """Change the status (the caller saves the strategy) and record why, and who (``actor``)."""
    previous = strategy.status
    strategy.status = status
    decision_record(
        strategy,
        _STATUS_DECISIONS[status],
        reason,
        {"from": previous, "to": status, **(numbers or {})},
        actor=actor,
        **links,
    )


def decision_record(
    strategy: Strategy, kind: str, reason: str, numbers: dict | None = None, *, actor: str, **links: Any
) -> StrategyDecision:
    """Record a decision about the strategy; ``actor`` is who made it: a username, or the job (the
    daily update, the lifecycle policy, the orchestrator, strategy generation)."""
    return StrategyDecision.objects.create(
        strategy=strategy, kind=kind, reason=reason, numbers=numbers or {}, actor=actor[:150], **links
    )
