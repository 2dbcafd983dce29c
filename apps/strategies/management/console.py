"""Shared pieces of the strategy commands: argument parsing, the strategy lookup and plain-text tables."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from django.core.management.base import CommandError

from apps.strategies import selectors
from apps.strategies.models import Strategy

_INTEGER = re.compile(r"^[+-]?\d+$")


def strategy_or_error(strategy_id: str) -> Strategy:
    try:
        return selectors.strategy_get(strategy_id=strategy_id, user=None)
    except Strategy.DoesNotExist:
        raise CommandError(f"unknown strategy {strategy_id!r} (nothing was written)") from None


def date_or_error(text: str | None, option: str) -> datetime | None:
    """``2019-01-01`` or ``2019-01-01T12:00`` (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option} {text!r} is not a date like 2019-01-01 or 2019-01-01T12:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def number_or_error(text: str, where: str) -> int | float | bool:
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INTEGER.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        raise CommandError(f"{where}: {text!r} is not a number") from None


def space_or_error(params: Sequence[str]) -> dict[str, object]:
    """``--param`` values as an optimiser space: ``name=20,25,30`` lists values, ``name=10:20:2`` is a
    stepped range (grid or random), ``name=0.01:0.05`` a continuous range (random only)."""
    if not params:
        raise CommandError("give at least one --param, e.g. --param rsi_oversold=20,25,30")
    space: dict[str, object] = {}
    for text in params:
        name, sep, spec = text.partition("=")
        name, spec = name.strip(), spec.strip()
        if not sep or not name or not spec:
            raise CommandError(f"--param {text!r} is not NAME=V1,V2,... or NAME=MIN:MAX[:STEP]")
        where = f"--param {name}"
        if ":" in spec:
            parts = [number_or_error(part, where) for part in spec.split(":")]
            if len(parts) not in (2, 3):
                raise CommandError(f"{where}: a range is MIN:MAX or MIN:MAX:STEP, got {spec!r}")
            space[name] = dict(zip(("min", "max", "step"), parts, strict=False))
        else:
            space[name] = [number_or_error(value, where) for value in spec.split(",")]
    return space


def cell(value: object, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with right-aligned columns after the first."""
    texts = [[cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in texts)) for i, h in enumerate(header)]

    def line(values: Sequence[str]) -> str:
        first, *rest = values
        return "  ".join(
            [first.ljust(widths[0]), *(v.rjust(w) for v, w in zip(rest, widths[1:], strict=True))]
        )

    return "\n".join([line(list(header)), line(["-" * w for w in widths]), *(line(row) for row in texts)])
