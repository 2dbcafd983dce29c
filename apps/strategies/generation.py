"""Strategy generation: ask an LLM (or the offline rule templates) for candidates, validate, backtest
on a training window and a later holdout window, and keep only those that beat buy-and-hold there.

The market context goes to the model as data. Its answer is parsed as JSON and checked by
``validate_answer`` with the rule language's parser and the same document rules as a user's
strategy; nothing in it is ever evaluated as code. Every candidate is stored with its outcome,
reason and numbers, kept or not.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.core.jobs import Interrupted, job_claimed, job_complete, job_fail, job_progress
from apps.llm.errors import LLMUnavailableError
from apps.llm.services import LLMResult, llm_complete_json
from apps.market import selectors as market
from apps.market.domain.analysis import analyse
from apps.market.domain.candles import parse_timeframe
from apps.market.domain.indicators import REGISTRY
from apps.market.models import Instrument
from apps.strategies import documents, selectors, services
from apps.strategies.models import (
    CandidateOutcome,
    DecisionKind,
    GenerationCandidate,
    GenerationRun,
    JobTrigger,
    Strategy,
    StrategyDecision,
    StrategySource,
    StrategyStatus,
    StrategyType,
    StrategyUpdateRun,
    StrategyVersion,
)
from apps.strategies.selectors import CandleWindow

logger = logging.getLogger(__name__)

TEMPLATE, TEMPLATE_VERSION = "strategy_generation", "1"
MAX_CANDIDATES = 10
CONTEXT_BARS = 500  # newest bars the market context is computed from
MIN_HOLDOUT_BARS = 100
MAX_NAME_CHARS = 100
MAX_RATIONALE_CHARS = 1000
# Generated strategies are long-only and read no model series: the context describes neither.
GENERATED_ACTIONS = ("buy", "sell")
GENERATED_TYPES = tuple(t for t in StrategyType.values if t != StrategyType.ML_SIGNAL)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _\-()/.,+%&]*$")

SYSTEM = (
    "You design rule-based trading strategies for a backtesting engine. You write conditions only in "
    "the engine's rule language described in the instructions; anything else is rejected. Answer only "
    "with the JSON object requested."
)


def _indicator_catalogue() -> str:
    lines = []
    for name, spec in REGISTRY.items():
        params = ", ".join(f"{p.name}={p.default:g}" for p in spec.params)
        outputs = "" if spec.outputs == ("value",) else f"; outputs .{', .'.join(spec.outputs)}"
        lines.append(f"- {name}({params}){outputs}")
    return "\n".join(lines)


INSTRUCTIONS = f"""Propose new long-only trading strategies for the market in the data block.
Each strategy is a list of rules; each rule has a condition, an action (buy opens a long position,
sell closes it) and a priority (a whole number, lower wins when several rules fire on one bar).

The rule language: comparisons (< <= > >= == !=, crosses_above, crosses_below) of price fields
(open high low close volume), numbers, strategy parameters and indicators, combined with and, or,
not and parentheses; arithmetic + - * /; the value N bars ago as x[N] (close[1], RSI(14)[2]).
Indicator arguments are numbers or parameter names: SMA(fast_period) crosses_above SMA(slow_period).
Multi-output indicators name their output: MACD(12,26,9).signal, BB(20,2).lower. Indicators:
{_indicator_catalogue()}

Parameters are a list of name/value pairs; every parameter a condition uses must be listed. Optional
risk parameters (fractions, 0.02 = 2%): stop_loss_pct, take_profit_pct, trailing_stop_pct,
position_size_pct (above 0, at most 1); max_holding_bars (whole bars). List the indicators the rules
use, e.g. "RSI", "SMA(50)". Give each strategy a short name and a one-sentence rationale tied to the data.
Do not repeat the active strategies in the data block. Propose at most the "count" given in the data.
Strategies are judged on a later holdout period against buy-and-hold, so favour robust, simple rules."""


def answer_schema(count: int) -> dict[str, Any]:
    """The JSON Schema of an answer of 1..``count`` candidates (strict structured-output subset)."""

    def strict(properties: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }

    candidate = strict(
        {
            "name": {"type": "string"},
            "type": {"type": "string", "enum": list(GENERATED_TYPES)},
            "rationale": {"type": "string"},
            "parameters": {
                "type": "array",
                "items": strict({"name": {"type": "string"}, "value": {"type": "number"}}),
            },
            "indicators": {"type": "array", "items": {"type": "string"}},
            "rules": {
                "type": "array",
                "items": strict(
                    {
                        "condition": {"type": "string"},
                        "action": {"type": "string", "enum": list(GENERATED_ACTIONS)},
                        "priority": {"type": "integer"},
                    }
                ),
            },
        }
    )
    return strict({"strategies": {"type": "array", "items": candidate, "minItems": 1, "maxItems": count}})


# --- validation ----------------------------------------------------------------------------------


def validate_answer(answer: Mapping[str, Any], *, count: int) -> None:
    """Raise ValueError naming the first problem unless ``answer`` is exactly the schema's object with
    1..``count`` candidates, each a valid strategy document as ``documents`` checks a user's (every
    condition parsed by the rule language's parser), long-only and free of model series."""
    _exact_keys(answer, ("strategies",), "the answer")
    candidates = answer["strategies"]
    if not isinstance(candidates, list) or not 1 <= len(candidates) <= count:
        raise ValueError(f"strategies must be a list of 1 to {count} strategies")
    for index, candidate in enumerate(candidates):
        try:
            _validate_candidate(candidate)
        except ValueError as error:
            name = candidate.get("name") if isinstance(candidate, Mapping) else None
            raise ValueError(f"strategies[{index}]{f' ({name!r})' if name else ''}: {error}") from None


def _exact_keys(value: object, keys: Sequence[str], what: str) -> None:
    if not isinstance(value, Mapping) or set(value) != set(keys):
        got = ", ".join(sorted(map(str, value))) if isinstance(value, Mapping) else type(value).__name__
        raise ValueError(f"{what} must have exactly the keys {', '.join(keys)}; got {got}")


def _validate_candidate(candidate: object) -> None:
    _exact_keys(candidate, ("name", "type", "rationale", "parameters", "indicators", "rules"), "a strategy")
    name = candidate["name"]
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS or not _NAME.fullmatch(name):
        raise ValueError(
            f"name must be 1 to {MAX_NAME_CHARS} letters, digits, spaces and simple punctuation, got {name!r}"
        )
    if candidate["type"] not in GENERATED_TYPES:
        raise ValueError(f"type must be one of {', '.join(GENERATED_TYPES)}, got {candidate['type']!r}")
    rationale = candidate["rationale"]
    if not isinstance(rationale, str) or len(rationale) > MAX_RATIONALE_CHARS:
        raise ValueError(f"rationale must be text of at most {MAX_RATIONALE_CHARS} characters")
    parameters = _parameters(candidate["parameters"])
    rules = candidate["rules"]
    if isinstance(rules, list):
        for position, rule in enumerate(rules):
            _exact_keys(rule, ("condition", "action", "priority"), f"rules[{position}]")
            if rule["action"] not in GENERATED_ACTIONS:
                raise ValueError(f"rules[{position}].action must be buy or sell, got {rule['action']!r}")
    problems = documents.document_problems(
        parameters=parameters, indicators=candidate["indicators"], rules=rules
    )
    if problems:
        raise ValueError(_problem_text(problems))
    if reads := documents.external_series(rules):
        raise ValueError(f"generated strategies may not read model series ({', '.join(sorted(reads))})")


def _parameters(pairs: object) -> dict[str, int | float]:
    """``[{"name", "value"}]`` as the document's ``{name: value}``; whole floats become ints."""
    if not isinstance(pairs, list):
        raise ValueError('parameters must be a list of {"name", "value"} pairs')
    parameters: dict[str, int | float] = {}
    for position, pair in enumerate(pairs):
        _exact_keys(pair, ("name", "value"), f"parameters[{position}]")
        name, value = pair["name"], pair["value"]
        if not isinstance(name, str) or name in parameters:
            raise ValueError(f"parameters[{position}].name must be a text name used once, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"parameters[{position}].value must be a finite number, got {value!r}")
        parameters[name] = int(value) if float(value).is_integer() else float(value)
    return parameters


def _problem_text(problems: Mapping[str, Any], path: str = "") -> str:
    """The first problem of ``documents.document_problems`` as ``rules.0.condition: message``."""
    name, problem = next(iter(problems.items()))
    where = f"{path}.{name}" if path else str(name)
    if isinstance(problem, Mapping):
        return _problem_text(problem, where)
    return f"{where}: {problem[0] if isinstance(problem, list) else problem}"


def candidate_document(candidate: Mapping[str, Any]) -> dict[str, Any]:
    """A validated candidate as a strategy document (parameters as a dict)."""
    return {
        "name": candidate["name"],
        "type": candidate["type"],
        "rationale": candidate["rationale"],
        "parameters": _parameters(candidate["parameters"]),
        "indicators": list(candidate["indicators"]),
        "rules": [dict(rule) for rule in candidate["rules"]],
    }


def document_key(*, parameters: Mapping[str, Any], rules: Sequence[Mapping[str, Any]]) -> str:
    """Equal for two strategies with the same rules (whitespace, case of actions and order aside) and
    parameters: what makes a candidate a duplicate."""
    normalised = sorted(
        json.dumps([" ".join(str(r["condition"]).split()), str(r["action"]).lower(), r.get("priority", 1)])
        for r in rules
    )
    return json.dumps({"rules": normalised, "parameters": dict(parameters)}, sort_keys=True)


# --- offline rule templates ----------------------------------------------------------------------


def _template(name: str, type: str, rationale: str, parameters: dict, indicators: list, rules: list) -> dict:
    return {
        "name": name,
        "type": type,
        "rationale": rationale,
        "parameters": [{"name": key, "value": value} for key, value in parameters.items()],
        "indicators": indicators,
        "rules": [{"condition": c, "action": a, "priority": 1} for c, a in rules],
    }


TREND_TEMPLATES = (
    _template(
        "EMA Crossover", StrategyType.TREND_FOLLOWING, "An up-trend: follow it with a fast/slow EMA cross.",
        {"fast_period": 12, "slow_period": 26, "trailing_stop_pct": 0.05}, ["EMA"],
        [("EMA(fast_period) crosses_above EMA(slow_period)", "buy"),
         ("EMA(fast_period) crosses_below EMA(slow_period)", "sell")],
    ),
    _template(
        "MACD Trend Filter", StrategyType.TREND_FOLLOWING,
        "An up-trend: enter on MACD crossing its signal above the long SMA.",
        {"trend_period": 200, "stop_loss_pct": 0.04}, ["MACD", "SMA(200)"],
        [("MACD(12,26,9).macd crosses_above MACD(12,26,9).signal and close > SMA(trend_period)", "buy"),
         ("MACD(12,26,9).macd crosses_below MACD(12,26,9).signal", "sell")],
    ),
    _template(
        "SMA Crossover 20/50", StrategyType.TREND_FOLLOWING, "An up-trend: the classic SMA 20/50 cross.",
        {"fast_period": 20, "slow_period": 50, "stop_loss_pct": 0.05}, ["SMA"],
        [("SMA(fast_period) crosses_above SMA(slow_period)", "buy"),
         ("SMA(fast_period) crosses_below SMA(slow_period)", "sell")],
    ),
)  # fmt: skip
DOWN_TEMPLATES = (
    _template(
        "RSI Oversold Bounce", StrategyType.MEAN_REVERSION,
        "A down-trend: only deep oversold bounces, exited early, with a tight stop.",
        {"rsi_period": 14, "rsi_oversold": 25, "rsi_exit": 50, "stop_loss_pct": 0.02,
         "take_profit_pct": 0.03}, ["RSI"],
        [("RSI(rsi_period) < rsi_oversold", "buy"), ("RSI(rsi_period) > rsi_exit", "sell")],
    ),
    _template(
        "Bollinger Snapback", StrategyType.MEAN_REVERSION,
        "A down-trend: buy closes below the lower band, exit at the middle band, tight stop.",
        {"bb_period": 20, "bb_std": 2.5, "stop_loss_pct": 0.02, "max_holding_bars": 48}, ["BB"],
        [("close < BB(bb_period, bb_std).lower", "buy"), ("close > BB(bb_period, bb_std).middle", "sell")],
    ),
)  # fmt: skip
RANGE_TEMPLATES = (
    _template(
        "RSI Range Reversion", StrategyType.MEAN_REVERSION, "A range: buy oversold, sell overbought.",
        {"rsi_period": 14, "rsi_oversold": 30, "rsi_overbought": 70, "stop_loss_pct": 0.03}, ["RSI"],
        [("RSI(rsi_period) < rsi_oversold", "buy"), ("RSI(rsi_period) > rsi_overbought", "sell")],
    ),
    _template(
        "Bollinger Range Reversion", StrategyType.MEAN_REVERSION,
        "A range: buy at the lower band, sell at the upper band.",
        {"bb_period": 20, "bb_std": 2, "stop_loss_pct": 0.03}, ["BB"],
        [("close < BB(bb_period, bb_std).lower", "buy"), ("close > BB(bb_period, bb_std).upper", "sell")],
    ),
    _template(
        "Stochastic Range Turn", StrategyType.MEAN_REVERSION,
        "A range: buy when %K turns up from oversold, sell when it turns down from overbought.",
        {"stoch_low": 20, "stoch_high": 80, "stop_loss_pct": 0.03}, ["STOCH"],
        [("STOCH(14,3).k crosses_above stoch_low", "buy"),
         ("STOCH(14,3).k crosses_below stoch_high", "sell")],
    ),
)  # fmt: skip
BREAKOUT_TEMPLATES = (
    _template(
        "Donchian Breakout", StrategyType.BREAKOUT,
        "High volatility: ride breaks of the 20-bar high, with a stop and a trailing stop.",
        {"dc_period": 20, "stop_loss_pct": 0.03, "trailing_stop_pct": 0.06}, ["DC"],
        [("close > DC(dc_period).upper[1]", "buy"), ("close < DC(dc_period).lower[1]", "sell")],
    ),
    _template(
        "Keltner Breakout", StrategyType.BREAKOUT,
        "High volatility: buy closes above the Keltner channel, exit at its middle, with a stop.",
        {"stop_loss_pct": 0.03}, ["KC"],
        [("close > KC(20,10,2).upper", "buy"), ("close < KC(20,10,2).middle", "sell")],
    ),
)  # fmt: skip


def offline_candidates(context: Mapping[str, Any]) -> dict[str, Any]:
    """The offline answer: rule templates for the detected regime first (high volatility: breakouts;
    up: trend following; down: mean reversion with tight stops; range: RSI/Bollinger/Stochastic
    reversion), then the others, up to ``context["count"]``. Not an LLM: labelled ``offline``."""
    regime = context["regime"]
    by_trend = {"up": TREND_TEMPLATES, "down": DOWN_TEMPLATES, "range": RANGE_TEMPLATES}
    preferred = list(by_trend.get(str(regime.get("trend")), RANGE_TEMPLATES))
    if regime.get("volatility") == "high":
        preferred = [*BREAKOUT_TEMPLATES, *preferred]
    pool = [*TREND_TEMPLATES, *DOWN_TEMPLATES, *RANGE_TEMPLATES, *BREAKOUT_TEMPLATES]
    ordered = [*preferred, *(t for t in pool if t not in preferred)]
    return {"strategies": ordered[: context["count"]]}


# --- runs ----------------------------------------------------------------------------------------


def generation_create(
    *,
    instrument: Instrument,
    timeframe: str,
    count: int,
    provider: str | None = None,
    trigger: str = JobTrigger.API,
    update_run: StrategyUpdateRun | None = None,
) -> GenerationRun:
    """Store a PENDING generation run; does not run it. Raises StrategyInputError for a count outside
    1..MAX_CANDIDATES, a provider not in LLM_PROVIDERS, or a market without candles in ``timeframe``."""
    problems: dict[str, list[str]] = {}
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CANDIDATES:
        problems["count"] = [f"must be a whole number from 1 to {MAX_CANDIDATES}, got {count!r}"]
    if provider and provider not in settings.LLM_PROVIDERS:
        problems["provider"] = [
            f"{provider!r} is not configured; configured: {', '.join(settings.LLM_PROVIDERS)}"
        ]
    if problem := selectors.series_problem(instrument=instrument, timeframe=timeframe):
        problems["timeframe"] = [problem]
    if problems:
        raise services.StrategyInputError(problems)
    return GenerationRun.objects.create(
        instrument=instrument,
        timeframe=timeframe,
        count=count,
        provider_requested=provider or "",
        trigger=trigger,
        update_run=update_run,
    )


def generation_run(*, run_id: int) -> GenerationRun | None:
    """Claim the run, build the market context, ask for candidates and judge each one.

    Side effects: LLM requests (``llm_complete_json``, which records each call), backtests in memory,
    a GenerationCandidate per candidate and a Strategy (with a ``generated`` decision) per kept one.
    Returns None, changing nothing, when the run was claimed or finished before. When no provider
    answers validly, or the market has too few candles, the run is FAILED with the reasons.
    """
    with job_claimed(model=GenerationRun, pk=run_id) as run:
        if run is None:
            return None
        try:
            return _generate(run)
        except Interrupted:
            raise
        except Exception as error:  # stored for the user; the row must not stay RUNNING
            logger.exception("Generation run %s failed", run_id)
            return job_fail(job=run, error=f"{type(error).__name__}: {error}")


def _generate(run: GenerationRun) -> GenerationRun:
    window = selectors.candle_window(
        instrument=run.instrument,
        timeframe=run.timeframe,
        warmup_bars=0,
        newest=settings.GENERATION_WINDOW_BARS,
    )
    holdout_bars = int(window.bars * settings.GENERATION_HOLDOUT_FRACTION)
    if holdout_bars < MIN_HOLDOUT_BARS:
        return job_fail(
            job=run,
            error=f"{window.bars} {run.timeframe} candles give a holdout of {holdout_bars} bars; "
            f"at least {MIN_HOLDOUT_BARS} are needed",
        )
    context = market_context(instrument=run.instrument, timeframe=run.timeframe, count=run.count)
    GenerationRun.objects.filter(pk=run.pk).update(context=context)
    job_progress(job=run, progress=0.1)
    try:
        result = _ask(run, context)
    except LLMUnavailableError as error:
        GenerationRun.objects.filter(pk=run.pk).update(llm_failures=list(error.failures))
        return job_fail(job=run, error=str(error))
    GenerationRun.objects.filter(pk=run.pk).update(
        provider_used=result.provider,
        model=result.model,
        llm_status=result.status,
        llm_calls=list(result.call_ids),
        llm_failures=list(result.failures),
    )
    job_progress(job=run, progress=0.3)
    candidates = [candidate_document(c) for c in result.data["strategies"]]
    outcomes = _judge(run, candidates, result.provider)
    kept = [c.strategy.strategy_id for c in outcomes if c.outcome == CandidateOutcome.KEPT]
    return job_complete(
        job=run,
        summary={"candidates": len(outcomes), "kept": len(kept), "kept_strategy_ids": kept},
    )


def _ask(run: GenerationRun, context: dict[str, Any]) -> LLMResult:
    return llm_complete_json(
        purpose="strategy_generation",
        template=TEMPLATE,
        template_version=TEMPLATE_VERSION,
        system=SYSTEM,
        context=context,
        instructions=INSTRUCTIONS,
        schema=answer_schema(run.count),
        validate=functools.partial(validate_answer, count=run.count),
        provider=run.provider_requested or None,
        offline_fallback=offline_candidates,
    )


def market_context(*, instrument: Instrument, timeframe: str, count: int) -> dict[str, Any]:
    """What the model is told, as data: the newest indicator readings, the regime, signals and
    confirmed patterns of the newest CONTEXT_BARS bars, and the market's active strategies."""
    frame = market.candles_frame(instrument=instrument, timeframe=timeframe, limit=CONTEXT_BARS)
    insights = analyse(frame, parse_timeframe(timeframe).duration.total_seconds())
    patterns = market.recent_patterns(frame)
    return {
        "symbol": instrument.symbol,
        "exchange": instrument.exchange,
        "timeframe": timeframe,
        "count": count,
        "last_candle": insights.last_time.isoformat(),
        "last_close": insights.last_close,
        "indicators": insights.indicators,
        "regime": insights.regime,
        "signals": [
            {"source": s.source, "direction": s.direction, "reason": s.reason} for s in insights.signals
        ],
        "recent_patterns": [
            {"pattern": p["pattern"], "direction": p["direction"], "confidence": round(p["confidence"], 2)}
            for p in patterns[-10:]
        ],
        "active_strategies": selectors.active_strategy_summaries(instrument=instrument, timeframe=timeframe),
    }


def _judge(run: GenerationRun, candidates: list[dict[str, Any]], provider: str) -> list[GenerationCandidate]:
    """De-duplicate, backtest (train, then holdout) and keep or reject each candidate, in order."""
    seen = {
        document_key(parameters=v.parameters, rules=v.rules)
        for v in selectors.market_versions(instrument=run.instrument, timeframe=run.timeframe)
    }
    warmup = max(documents.warmup_bars(c["rules"], [c["parameters"]]) for c in candidates)
    window = selectors.candle_window(
        instrument=run.instrument,
        timeframe=run.timeframe,
        warmup_bars=warmup,
        newest=settings.GENERATION_WINDOW_BARS,
    )
    train, holdout = split_window(window, settings.GENERATION_HOLDOUT_FRACTION)
    stored = []
    for index, candidate in enumerate(candidates):
        key = document_key(parameters=candidate["parameters"], rules=candidate["rules"])
        if key in seen:
            stored.append(_reject(run, index, candidate, "duplicate: the same rules and parameters as an "
                                  "existing strategy of this market or an earlier candidate"))  # fmt: skip
        else:
            seen.add(key)
            stored.append(_evaluate(run, index, candidate, train, holdout, provider))
        job_progress(job=run, progress=0.3 + 0.7 * (index + 1) / len(candidates))
    return stored


def split_window(window: CandleWindow, holdout_fraction: float) -> tuple[CandleWindow, CandleWindow]:
    """The window's earlier bars for training and its later ``holdout_fraction`` for the holdout, each
    with the same warm-up bars in front (the holdout's are the training window's last bars)."""
    holdout_bars = int(window.bars * holdout_fraction)
    split = len(window.frame) - holdout_bars
    train = CandleWindow(window.frame.iloc[:split], window.first)
    holdout = CandleWindow(window.frame.iloc[split - window.first :], window.first)
    return train, holdout


def _metrics(report: Any) -> dict[str, Any]:
    metrics = report.metrics()
    return {key: metrics[key] for key in services.EVALUATION_METRICS}


def _backtest(run: GenerationRun, candidate: Mapping[str, Any], window: CandleWindow) -> dict[str, Any]:
    # Unsaved rows: strategy_report reads only their fields, and nothing is stored unless kept.
    strategy = Strategy(instrument=run.instrument, timeframe=run.timeframe)
    version = StrategyVersion(parameters=candidate["parameters"], rules=candidate["rules"])
    report = services.strategy_report(
        strategy=strategy,
        version=version,
        window=window,
        initial_capital=float(services.DEFAULT_CAPITAL),
        commission=services.DEFAULT_COMMISSION,
        slippage=0.0,
    )
    return _metrics(report)


def _evaluate(
    run: GenerationRun,
    index: int,
    candidate: dict[str, Any],
    train: CandleWindow,
    holdout: CandleWindow,
    provider: str,
) -> GenerationCandidate:
    try:
        train_metrics = _backtest(run, candidate, train)
        holdout_metrics = _backtest(run, candidate, holdout)
    except ValueError as error:  # RuleError and BacktestError: the engine refused it
        return _reject(run, index, candidate, f"the backtest failed: {error}")
    numbers = {"train_metrics": train_metrics, "holdout_metrics": holdout_metrics}
    verdict = holdout_verdict(holdout_metrics, settings.GENERATION_MIN_SHARPE)
    if verdict is not None:
        return _reject(run, index, candidate, verdict, **numbers)
    return _keep(run, index, candidate, provider, **numbers)


def holdout_verdict(metrics: Mapping[str, Any], min_sharpe: float) -> str | None:
    """Why the holdout results reject a candidate, or None when it beats buy-and-hold and the Sharpe."""
    total, hold, sharpe = (
        metrics["total_return_pct"],
        metrics["buy_and_hold_return_pct"],
        metrics["sharpe_ratio"],
    )
    sharpe_text = "n/a" if sharpe is None else f"{sharpe:.2f}"
    numbers = f"holdout return {total:+.2f}% vs buy-and-hold {hold:+.2f}%, Sharpe {sharpe_text}"
    if total <= hold:
        return f"does not beat buy-and-hold on the holdout: {numbers}"
    if sharpe is None or sharpe < min_sharpe:
        return f"holdout Sharpe below the minimum of {min_sharpe:g}: {numbers}"
    return None


def _reject(
    run: GenerationRun, index: int, candidate: Mapping[str, Any], reason: str, **numbers: Any
) -> GenerationCandidate:
    holdout = numbers.get("holdout_metrics")
    return GenerationCandidate.objects.create(
        run=run,
        index=index,
        name=candidate["name"],
        document=dict(candidate),
        outcome=CandidateOutcome.REJECTED,
        reason=reason,
        holdout_buy_and_hold_pct=holdout and holdout["buy_and_hold_return_pct"],
        **numbers,
    )


def _keep(
    run: GenerationRun,
    index: int,
    candidate: Mapping[str, Any],
    provider: str,
    *,
    train_metrics: dict[str, Any],
    holdout_metrics: dict[str, Any],
) -> GenerationCandidate:
    status = StrategyStatus.ACTIVE if settings.GENERATION_AUTO_DEPLOY else StrategyStatus.DRAFT
    sharpe = holdout_metrics["sharpe_ratio"]
    reason = (
        f"holdout return {holdout_metrics['total_return_pct']:+.2f}% beats buy-and-hold "
        f"{holdout_metrics['buy_and_hold_return_pct']:+.2f}% with Sharpe {sharpe:.2f} "
        f"(minimum {settings.GENERATION_MIN_SHARPE:g}); stored as {status}"
    )
    with transaction.atomic():
        strategy = services.strategy_create(
            name=candidate["name"],
            type=candidate["type"],
            instrument=run.instrument,
            timeframe=run.timeframe,
            parameters=candidate["parameters"],
            indicators=candidate["indicators"],
            rules=candidate["rules"],
            status=status,
            source=StrategySource.LLM,
        )
        StrategyDecision.objects.create(
            strategy=strategy,
            kind=DecisionKind.GENERATED,
            reason=f"generated by {provider} (generation run {run.pk}): {reason}",
            numbers={
                "generation_run": run.pk,
                "provider": provider,
                "train": train_metrics,
                "holdout": holdout_metrics,
            },
            update_run=run.update_run,
        )
        return GenerationCandidate.objects.create(
            run=run,
            index=index,
            name=candidate["name"],
            document=dict(candidate),
            outcome=CandidateOutcome.KEPT,
            reason=reason,
            train_metrics=train_metrics,
            holdout_metrics=holdout_metrics,
            holdout_buy_and_hold_pct=holdout_metrics["buy_and_hold_return_pct"],
            strategy=strategy,
        )


# --- the daily update's hook ---------------------------------------------------------------------
