"""Trading rules (condition, action, priority) and their combination into one action per bar."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .evaluate import IndicatorCache, evaluate
from .syntax import Condition, RuleError, parse


class Action(IntEnum):
    """Signal codes, one per bar: what the strategy asks for on that bar's close."""

    NONE = 0
    BUY = 1  # open or add to a long
    SELL = 2  # close the long
    SHORT = 3  # open or add to a short (when shorting is allowed)
    COVER = 4  # close the short


ACTIONS = ("buy", "sell", "short", "cover")


@dataclass(frozen=True)
class Rule:
    """``condition`` fires ``action``; on a bar where several rules fire, the lowest ``priority``
    wins, and among equal priorities the rule listed first. The condition is parsed on creation,
    so an invalid rule cannot exist."""

    condition: str
    action: str
    priority: int = 1
    node: Condition = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        action = self.action.lower() if isinstance(self.action, str) else self.action
        if action not in ACTIONS:
            raise RuleError(
                str(self.condition), None, f"an action ({', '.join(ACTIONS)})", f"action {self.action!r}"
            )
        if not isinstance(self.priority, int) or isinstance(self.priority, bool):
            raise RuleError(
                str(self.condition), None, "a whole-number priority", f"priority {self.priority!r}"
            )
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "node", parse(self.condition))

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Rule:
        """A rule from the strategy document's ``{"condition", "action", "priority"}``."""
        if "condition" not in data or "action" not in data:
            raise RuleError(
                str(data.get("condition", "")),
                None,
                "a rule with 'condition' and 'action'",
                "incomplete rule",
            )
        return cls(data["condition"], data["action"], data.get("priority", 1))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        return {"condition": self.condition, "action": self.action, "priority": self.priority}

    @property
    def code(self) -> Action:
        return Action[self.action.upper()]


def as_rules(rules: Iterable[Rule | Mapping[str, object]]) -> list[Rule]:
    """Rules given as :class:`Rule` objects or strategy-document dicts, as Rules."""
    return [r if isinstance(r, Rule) else Rule.from_dict(r) for r in rules]


def signals(
    rules: Iterable[Rule | Mapping[str, object]],
    frame: pd.DataFrame,
    parameters: Mapping[str, object],
    external: Mapping[str, NDArray[np.floating] | pd.Series] | None = None,
    *,
    cache: IndicatorCache | None = None,
) -> NDArray[np.int8]:
    """The winning :class:`Action` code of every bar (int8, 0 where no rule fires)."""
    rules = as_rules(rules)
    if cache is None:
        cache = IndicatorCache(frame)
    codes = np.zeros(len(frame), dtype=np.int8)
    # Stable sort: equal priorities keep list order; the best rule claims its bars first.
    for rule in sorted(rules, key=lambda r: r.priority):
        fired = evaluate(rule.node, frame, parameters, external, cache=cache)
        codes[fired & (codes == Action.NONE)] = rule.code
    return codes
