"""No catch-all in the code that jobs run swallows a soft time limit or a lost database.

Celery's SoftTimeLimitExceeded is an ``Exception``: an ``except Exception`` that records "skipped"
and carries on would let the hard limit kill the process with the row RUNNING. Every broad handler
under ``apps/`` and ``workers/`` must either re-raise (its last statement is a ``raise``) or follow
an ``except Interrupted: raise`` in the same ``try``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BROAD = {"Exception", "BaseException"}
# Health checks must report every failure, a database that is down included, and run for
# milliseconds in a request or a snapshot, never near a time limit.
EXEMPT = {"apps/health/checks.py"}


def _names(node: ast.expr | None) -> set[str]:
    if node is None:
        return {"BaseException"}  # a bare except
    if isinstance(node, ast.Tuple):
        return {name for element in node.elts for name in _names(element)}
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute):
        return {node.attr}
    return set()


def _broad_handlers_that_swallow(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if not isinstance(node, ast.Try):
            continue
        interrupted_first = False
        for handler in node.handlers:
            names = _names(handler.type)
            if "Interrupted" in names and isinstance(handler.body[-1], ast.Raise):
                interrupted_first = True
            if names & BROAD and not interrupted_first and not isinstance(handler.body[-1], ast.Raise):
                found.append(f"{name}:{handler.lineno}")
    return found


def _sources() -> list[Path]:
    files = sorted((REPO / "apps").rglob("*.py")) + sorted((REPO / "workers").rglob("*.py"))
    return [f for f in files if "migrations" not in f.parts and str(f.relative_to(REPO)) not in EXEMPT]


def test_every_broad_handler_lets_interruptions_through():
    offenders = [
        spot
        for path in _sources()
        for spot in _broad_handlers_that_swallow(path.read_text(), str(path.relative_to(REPO)))
    ]

    assert offenders == []


@pytest.mark.parametrize(
    ("source", "swallows"),
    [
        ("try:\n    f()\nexcept Exception:\n    log()\n", True),
        ("try:\n    f()\nexcept Interrupted:\n    raise\nexcept Exception:\n    log()\n", False),
        ("try:\n    f()\nexcept Exception:\n    log()\n    raise\n", False),
        ("try:\n    f()\nexcept:\n    pass\n", True),
        ("try:\n    f()\nexcept ValueError:\n    pass\n", False),
    ],
)
def test_the_check_tells_a_swallowing_handler_from_a_safe_one(source, swallows):
    assert bool(_broad_handlers_that_swallow(source, "probe.py")) is swallows
