"""The rule language's grammar: a tokenizer and a recursive-descent parser building an immutable tree.

Grammar, loosest binding first (keywords and price fields are case-insensitive, parameter names are
not)::

    condition  := or_expr END
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := sum [("<" | "<=" | ">" | ">=" | "==" | "!=" | "crosses_above" | "crosses_below") sum]
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | postfix
    postfix    := primary ["[" INTEGER "]"]            previous bars: close[1], RSI(14)[2]
    primary    := NUMBER | "(" or_expr ")" | NAME ["(" [arg ("," arg)*] ")"] ["." NAME]
    arg        := ["-"] NUMBER | NAME                  a number or a strategy parameter

A NAME is, in this order: a price field (``open high low close volume``), an external series supplied
at evaluation time (``ML_PROBA``, ``ML_RETURN``), an indicator of the market registry (``RSI``,
``MACD(12,26,9).signal``; without arguments it reads the strategy's ``rsi_period``-style parameters,
else the registry defaults), or a strategy parameter (``rsi_oversold``).

Every node is typed as a number series or a condition, and mixing them (``RSI and close``,
``(RSI < 30) + 1``, a bare ``RSI``) is rejected here, so a parsed condition always yields booleans.
Conditions come from users and LLMs, so their length and nesting depth are bounded. Nothing is ever
passed to ``eval`` or ``exec``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from apps.market.domain.indicators import REGISTRY, IndicatorError, get_indicator
from apps.market.domain.indicators import Indicator as IndicatorSpec

MAX_CONDITION_LENGTH = 1000
MAX_DEPTH = 40
MAX_LAG = 10_000

PRICE_FIELDS = ("open", "high", "low", "close", "volume")
EXTERNAL_SERIES = ("ML_PROBA", "ML_RETURN")
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
CROSSES = ("crosses_above", "crosses_below")
KEYWORDS = ("and", "or", "not", *CROSSES)

VALUE_EXPECTED = "a number, field, indicator or parameter"
CONDITION_EXPECTED = f"a comparison ({', '.join(COMPARISONS + CROSSES)})"

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|==|!=|[<>+\-*/()\[\],.]))"
)


class RuleError(ValueError):
    """A rule that cannot be parsed, validated or evaluated.

    ``position`` is the 0-based character offset in ``condition`` (None when the problem is not in
    the text, e.g. an unknown action), ``expected`` says what would have been valid there.
    """

    def __init__(
        self, condition: str, position: int | None, expected: str, problem: str | None = None
    ) -> None:
        self.condition = condition
        self.position = position
        self.expected = expected
        self.problem = problem
        super().__init__(self._message())

    def _message(self) -> str:
        where = f" at position {self.position}" if self.position is not None else ""
        if self.problem is None:
            return f"{self.condition}: expected {self.expected}{where}"
        return f"{self.condition}: {self.problem}{where}; expected {self.expected}"


class RuleSyntaxError(RuleError):
    """The condition is not a valid sentence of the rule language, or names something unknown."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "number", "name", "op" or "end"
    text: str
    position: int


def tokenize(condition: str) -> list[Token]:
    """Split ``condition`` into tokens, ending with an ``end`` token at its length."""
    tokens = []
    position = 0
    end = len(condition.rstrip())
    while position < end:
        match = _TOKEN.match(condition, position)
        if match is None or match.lastgroup is None:
            offset = len(condition) - len(condition[position:].lstrip())
            raise RuleSyntaxError(
                condition,
                offset,
                "a name, number, operator or parenthesis",
                f"unexpected character {condition[offset]!r}",
            )
        tokens.append(Token(match.lastgroup, match.group(match.lastgroup), match.start(match.lastgroup)))
        position = match.end()
    tokens.append(Token("end", "", len(condition)))
    return tokens


# --- the syntax tree -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    """A node of the syntax tree; ``kind`` is ``"number"`` (a value series) or ``"boolean"``."""

    position: int
    depth: int = field(init=False, compare=False, repr=False)
    kind: ClassVar[str] = "number"

    def __post_init__(self) -> None:
        object.__setattr__(self, "depth", 1 + max((child.depth for child in self.children()), default=0))

    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class Number(Node):
    value: float


@dataclass(frozen=True, slots=True)
class Field(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Parameter(Node):
    name: str


@dataclass(frozen=True, slots=True)
class External(Node):
    name: str


@dataclass(frozen=True, slots=True)
class IndicatorCall(Node):
    """``name(args).output``; ``args`` is None for a bare name that reads the strategy parameters."""

    name: str
    args: tuple[Number | Parameter, ...] | None
    output: str

    def children(self) -> tuple[Node, ...]:
        return self.args or ()


@dataclass(frozen=True, slots=True)
class Lag(Node):
    operand: Node
    bars: int

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.operand.kind

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Negate(Node):
    operand: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Arithmetic(Node):
    op: str
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Comparison(Node):
    """``left op right`` where op is one of COMPARISONS or CROSSES."""

    op: str
    left: Node
    right: Node
    kind: ClassVar[str] = "boolean"

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Logical(Node):
    """``and`` / ``or`` over two or more conditions (flat, so long rule chains stay shallow)."""

    op: str
    operands: tuple[Node, ...]
    kind: ClassVar[str] = "boolean"

    def children(self) -> tuple[Node, ...]:
        return self.operands


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: Node
    kind: ClassVar[str] = "boolean"

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Condition(Node):
    """The root: the parsed text and its boolean expression."""

    text: str
    expression: Node
    kind: ClassVar[str] = "boolean"

    def children(self) -> tuple[Node, ...]:
        return (self.expression,)


def parse(condition: str) -> Condition:
    """Parse ``condition`` into a syntax tree, or raise :class:`RuleSyntaxError`."""
    if not isinstance(condition, str) or not condition.strip():
        raise RuleSyntaxError(str(condition), 0, "a condition such as 'RSI < 30'", "empty condition")
    if len(condition) > MAX_CONDITION_LENGTH:
        raise RuleSyntaxError(
            condition[:60] + "...",
            MAX_CONDITION_LENGTH,
            f"at most {MAX_CONDITION_LENGTH} characters",
            f"condition of {len(condition)} characters",
        )
    return _Parser(condition).parse()


class _Parser:
    def __init__(self, condition: str) -> None:
        self.condition = condition
        self.tokens = tokenize(condition)
        self.index = 0
        self.nesting = 0

    # --- token helpers

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def _advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _at_op(self, *ops: str) -> bool:
        return self.token.kind == "op" and self.token.text in ops

    def _at_keyword(self, *words: str) -> bool:
        return self.token.kind == "name" and self.token.text.lower() in words

    def _error(self, expected: str, token: Token | None = None) -> RuleSyntaxError:
        token = token or self.token
        problem = None if token.kind == "end" else f"unexpected {token.text!r}"
        return RuleSyntaxError(self.condition, token.position, expected, problem)

    def _expect_op(self, op: str) -> Token:
        if not self._at_op(op):
            raise self._error(f"{op!r}")
        return self._advance()

    def _require(self, node: Node, kind: str) -> Node:
        if node.kind != kind:
            expected = VALUE_EXPECTED if kind == "number" else CONDITION_EXPECTED
            found = "a condition" if node.kind == "boolean" else "a value without a comparison"
            raise RuleSyntaxError(self.condition, node.position, expected, f"found {found}")
        return node

    def _checked(self, node: Node) -> Node:
        if node.depth > MAX_DEPTH:
            raise self._too_deep(node.position)
        return node

    def _nest(self, token: Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self._too_deep(token.position)

    def _too_deep(self, position: int) -> RuleSyntaxError:
        return RuleSyntaxError(
            self.condition, position, f"at most {MAX_DEPTH} levels of nesting", "expression too deep"
        )

    # --- grammar

    def parse(self) -> Condition:
        expression = self._or_expr()
        if self.token.kind != "end":
            if expression.kind == "number":
                raise self._error(CONDITION_EXPECTED)
            raise self._error("'and', 'or' or the end of the condition")
        if expression.kind != "boolean":
            raise RuleSyntaxError(self.condition, self.token.position, CONDITION_EXPECTED)
        return Condition(0, self.condition, expression)

    def _logical(self, word: str, operand: Callable[[], Node]) -> Node:
        first = operand()
        operands = [first]
        while self._at_keyword(word):
            self._advance()
            operands.append(self._require(operand(), "boolean"))
        if len(operands) == 1:
            return first
        self._require(first, "boolean")
        return self._checked(Logical(first.position, word, tuple(operands)))

    def _or_expr(self) -> Node:
        return self._logical("or", self._and_expr)

    def _and_expr(self) -> Node:
        return self._logical("and", self._not_expr)

    def _not_expr(self) -> Node:
        if not self._at_keyword("not"):
            return self._comparison()
        token = self._advance()
        self._nest(token)
        operand = self._require(self._not_expr(), "boolean")
        self.nesting -= 1
        return self._checked(Not(token.position, operand))

    def _comparison(self) -> Node:
        left = self._sum()
        if self._at_op(*COMPARISONS) or self._at_keyword(*CROSSES):
            op = self._advance().text.lower()
            self._require(left, "number")
            right = self._require(self._sum(), "number")
            return self._checked(Comparison(left.position, op, left, right))
        return left

    def _binary(self, ops: tuple[str, ...], operand: Callable[[], Node]) -> Node:
        left = operand()
        while self._at_op(*ops):
            op = self._advance().text
            self._require(left, "number")
            right = self._require(operand(), "number")
            left = self._checked(Arithmetic(left.position, op, left, right))
        return left

    def _sum(self) -> Node:
        return self._binary(("+", "-"), self._product)

    def _product(self) -> Node:
        return self._binary(("*", "/"), self._unary)

    def _unary(self) -> Node:
        if not self._at_op("-"):
            return self._postfix()
        token = self._advance()
        self._nest(token)
        operand = self._require(self._unary(), "number")
        self.nesting -= 1
        if isinstance(operand, Number):
            return Number(token.position, -operand.value)
        return self._checked(Negate(token.position, operand))

    def _postfix(self) -> Node:
        node = self._primary()
        if not self._at_op("["):
            return node
        self._advance()
        token = self.token
        if token.kind != "number" or "." in token.text or int(token.text) > MAX_LAG:
            raise self._error(f"a whole number of bars from 0 to {MAX_LAG}")
        self._advance()
        self._expect_op("]")
        return self._checked(Lag(node.position, node, int(token.text)))

    def _primary(self) -> Node:
        token = self.token
        if token.kind == "number":
            self._advance()
            return Number(token.position, self._number(token))
        if self._at_op("("):
            self._advance()
            self._nest(token)
            inner = self._or_expr()
            self.nesting -= 1
            self._expect_op(")")
            return inner
        if token.kind == "name" and token.text.lower() not in KEYWORDS:
            self._advance()
            return self._name(token)
        raise self._error(VALUE_EXPECTED)

    def _number(self, token: Token) -> float:
        value = float(token.text)
        if not math.isfinite(value):
            raise RuleSyntaxError(self.condition, token.position, "a finite number", "number too large")
        return value

    def _name(self, token: Token) -> Node:
        text = token.text
        if text.lower() in PRICE_FIELDS:
            return Field(token.position, text.lower())
        if text.upper() in EXTERNAL_SERIES:
            return External(token.position, text.upper())
        if self._at_op("(") or self._at_op("."):
            return self._indicator(token)
        try:
            get_indicator(text)
        except IndicatorError:
            return Parameter(token.position, text)
        return self._indicator(token)

    def _indicator(self, token: Token) -> IndicatorCall:
        try:
            indicator = get_indicator(token.text)
        except IndicatorError:
            raise RuleSyntaxError(
                self.condition,
                token.position,
                f"an indicator ({', '.join(sorted(REGISTRY))})",
                f"unknown indicator {token.text!r}",
            ) from None
        args = self._arguments() if self._at_op("(") else None
        if args is not None and len(args) > len(indicator.params):
            names = ", ".join(p.name for p in indicator.params) or "none"
            raise RuleSyntaxError(
                self.condition,
                token.position,
                f"at most {len(indicator.params)} arguments ({names})",
                f"{indicator.name} given {len(args)} arguments",
            )
        values = [a.value for a in args or () if isinstance(a, Number)]
        if args is not None and len(values) == len(args):  # all numbers: check them now
            self._check_arguments(indicator.name, values, token)
        output = indicator.default_output
        if self._at_op("."):
            self._advance()
            name = self.token
            if name.kind != "name" or name.text.lower() not in indicator.outputs:
                raise self._error(f"an output of {indicator.name} ({', '.join(indicator.outputs)})", name)
            self._advance()
            output = name.text.lower()
        return IndicatorCall(token.position, indicator.name, args, output)

    def _arguments(self) -> tuple[Number | Parameter, ...]:
        self._expect_op("(")
        args: list[Number | Parameter] = []
        while not self._at_op(")"):
            if args:
                self._expect_op(",")
            args.append(self._argument())
        self._advance()
        return tuple(args)

    def _argument(self) -> Number | Parameter:
        token = self.token
        sign = 1.0
        if self._at_op("-"):
            self._advance()
            sign = -1.0
        current = self.token
        if current.kind == "number":
            self._advance()
            return Number(token.position, sign * self._number(current))
        if current.kind == "name" and sign > 0 and current.text.lower() not in KEYWORDS:
            self._advance()
            return Parameter(current.position, current.text)
        raise self._error("a number or a parameter name")

    def _check_arguments(self, name: str, values: list[float], token: Token) -> None:
        indicator = get_indicator(name)
        try:
            indicator.resolve(values)
        except IndicatorError as error:
            raise RuleSyntaxError(
                self.condition, token.position, _parameter_list(indicator), str(error)
            ) from None


def _parameter_list(indicator: IndicatorSpec) -> str:
    return "parameters " + ", ".join(f"{p.name} {p.minimum:g}..{p.maximum:g}" for p in indicator.params)
