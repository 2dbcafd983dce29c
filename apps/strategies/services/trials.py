"""The trial ledger's writes, and the gate every system deployment passes: the deflated Sharpe ratio
against ``STRATEGY_MIN_DEFLATED_SHARPE`` and, where an optimisation chose the parameters, the PBO
against ``STRATEGY_MAX_PBO``.

A trial is written once: its key names its source object (``backtest:<id>``,
``optimization:<run id>:<trial index>``, ``candidate:<generation run id>:<index>``), and a second
write of the same key (a retried task) is ignored by the database, so the family's count is exact
however often a job runs. Optimisation trials go in with one bulk insert per chunk, as each
chunk is stored (a search that never concludes still counts what it evaluated).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.core import ownership
from apps.strategies.engine.robustness import ReturnMoments, SharpeTests, sharpe_tests
from apps.strategies.models import Strategy, Trial
from apps.strategies.selectors import Family, family_totals

_BATCH = 1000


@dataclass(frozen=True)
class TrialRecord:
    """One configuration to record: its key, its parameters and its return moments."""

    key: str
    parameters: Mapping[str, Any]
    moments: ReturnMoments


def trials_record(
    *,
    family: Family,
    source: str,
    records: Sequence[TrialRecord],
    strategy: Strategy | None = None,
    owner: ownership.User | None = None,
) -> None:
    """Insert ``records`` into ``family``'s ledger in one bulk statement; keys already there (the
    same task run again) are left as they are."""
    Trial.objects.bulk_create(
        [
            Trial(
                key=record.key,
                instrument_id=family.instrument_id,
                timeframe=family.timeframe,
                lineage=family.lineage,
                source=source,
                strategy=strategy,
                owner=owner,
                parameters=dict(record.parameters),
                observations=record.moments.observations,
                sharpe=record.moments.sharpe,
                skewness=record.moments.skewness,
                kurtosis=record.moments.kurtosis,
            )
            for record in records
        ],
        batch_size=_BATCH,
        ignore_conflicts=True,
    )


def deflated_tests(*, family: Family, moments: ReturnMoments) -> SharpeTests:
    """The Sharpe tests of ``moments`` deflated by every trial the family holds now."""
    totals = family_totals(family=family)
    return sharpe_tests(moments, trials=max(totals.trials, 1), sharpe_variance=totals.sharpe_variance)


def deflation_verdict(*, deflated_sharpe: float | None, pbo: float | None = None) -> str | None:
    """Why a deployment is refused, with the numbers, or None when it passes: the deflated Sharpe
    ratio must reach ``STRATEGY_MIN_DEFLATED_SHARPE`` and a PBO (when an optimisation chose the
    parameters) must not exceed ``STRATEGY_MAX_PBO``."""
    floor, ceiling = settings.STRATEGY_MIN_DEFLATED_SHARPE, settings.STRATEGY_MAX_PBO
    problems = []
    if deflated_sharpe is None:
        problems.append(
            f"the deflated Sharpe ratio is undefined (no varying returns); at least {floor:g} is needed"
        )
    elif deflated_sharpe < floor:
        problems.append(f"deflated Sharpe ratio {deflated_sharpe:.3f} is below the minimum of {floor:g}")
    if pbo is not None and pbo > ceiling:
        problems.append(f"probability of backtest overfitting {pbo:.3f} exceeds the maximum of {ceiling:g}")
    return "; ".join(problems) or None


def gate_numbers(tests: SharpeTests, pbo: float | None = None) -> dict[str, Any]:
    """The numbers a gate's decision stores: the deflated Sharpe tests, the PBO and both thresholds."""
    return {
        **tests.to_dict(),
        "pbo": pbo,
        "min_deflated_sharpe": settings.STRATEGY_MIN_DEFLATED_SHARPE,
        "max_pbo": settings.STRATEGY_MAX_PBO,
    }
