"""The offline rule templates: candidates chosen by the market regime when no LLM answers.

They are data (``templates.json``: a list per regime, in the answer schema of
``apps.strategies.generation.schema``), pass the same validation as an LLM's answer, and a run that
uses them is labelled ``offline``: it never claims an LLM proposed them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TEMPLATES_FILE = Path(__file__).with_name("templates.json")
TRENDS = ("up", "down", "range")
HIGH_VOLATILITY = "high_volatility"


@functools.cache
def templates() -> dict[str, list[dict[str, Any]]]:
    """The templates by regime: ``up``, ``down``, ``range`` and ``high_volatility``."""
    return json.loads(TEMPLATES_FILE.read_text())


def offline_candidates(context: Mapping[str, Any]) -> dict[str, Any]:
    """The offline answer: the templates of the detected regime first (high volatility: breakouts;
    up: trend following; down: mean reversion with tight stops; range: RSI, Bollinger and stochastic
    reversion), then the others, up to ``context["count"]``."""
    by_regime = templates()
    regime = context["regime"]
    trend = str(regime.get("trend"))
    preferred = list(by_regime[trend if trend in TRENDS else "range"])
    if regime.get("volatility") == "high":
        preferred = [*by_regime[HIGH_VOLATILITY], *preferred]
    pool = [template for group in (*TRENDS, HIGH_VOLATILITY) for template in by_regime[group]]
    ordered = [*preferred, *(template for template in pool if template not in preferred)]
    return {"strategies": ordered[: context["count"]]}
