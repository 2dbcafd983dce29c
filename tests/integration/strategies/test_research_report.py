"""The research report runs the real generation pipeline on stored history: its counts are the
database's (candidates, trials, kept strategies), each gate narrows them, and bad input runs nothing."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.strategies import selectors
from apps.strategies.models import (
    CandidateOutcome,
    GenerationCandidate,
    GenerationRun,
    JobTrigger,
    Strategy,
    StrategyStatus,
    Trial,
)

pytestmark = pytest.mark.django_db

SLICE = ("--symbol", "BTCUSD", "--timeframe", "1h", "--count", "3")


@pytest.fixture(autouse=True)
def small_window(settings):
    """600 bars (a 180-bar holdout) keep each backtest short; the shipped defaults otherwise."""
    settings.GENERATION_WINDOW_BARS = 600
    settings.GENERATION_HOLDOUT_FRACTION = 0.3
    settings.GENERATION_MIN_SHARPE = 0.5
    settings.GENERATION_AUTO_DEPLOY = False
    settings.STRATEGY_MIN_DEFLATED_SHARPE = 0.95


def _report(*args: str) -> dict:
    out = StringIO()
    call_command("research_report", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_the_counts_are_the_pipelines_records_and_each_gate_narrows_them(btc_hourly):
    family = selectors.generation_family(instrument=btc_hourly, timeframe="1h")

    report = _report(*SLICE)

    (line,) = report["series"]
    run = GenerationRun.objects.get()
    assert (run.pk, run.trigger, run.provider_used, run.owner) == (
        line["run_id"],
        JobTrigger.COMMAND,
        "offline",
        None,
    )
    assert line["proposed"] == GenerationCandidate.objects.filter(run=run).count() == 3
    assert line["backtested"] == Trial.objects.filter(key__startswith=f"candidate:{run.pk}:").count() == 3
    assert (line["family_trials_before"], line["family_trials_after"]) == (0, 3)
    assert selectors.family_totals(family=family).trials == 3
    assert line["survived_deflation"] <= line["passed_holdout"] <= line["proposed"]
    kept = GenerationCandidate.objects.filter(run=run, outcome=CandidateOutcome.KEPT).count()
    assert line["survived_deflation"] == kept == Strategy.objects.count()
    assert report["total"] == {name: line[name] for name in report["total"]}


def test_survivors_are_reported_with_their_numbers_and_stored_as_drafts(btc_hourly, settings):
    settings.GENERATION_MIN_SHARPE = -100.0  # every holdout that beats buy-and-hold passes ...
    settings.STRATEGY_MIN_DEFLATED_SHARPE = 0.0  # ... and survives: this test is about the report

    (line,) = _report(*SLICE)["series"]

    survivors = [c for c in line["passed"] if c["outcome"] == CandidateOutcome.KEPT]
    assert len(survivors) == line["survived_deflation"] == line["passed_holdout"] > 0
    for survivor in survivors:
        strategy = Strategy.objects.get(strategy_id=survivor["strategy_id"])
        candidate = GenerationCandidate.objects.get(strategy=strategy)
        assert strategy.status == StrategyStatus.DRAFT
        assert survivor["deflated_sharpe"] == candidate.robustness["deflated_sharpe"]
        assert survivor["holdout_return_pct"] > survivor["buy_and_hold_return_pct"]
        assert survivor["trials"] == 3


def test_a_second_report_deflates_by_the_first_ones_trials_too(btc_hourly):
    _report(*SLICE)
    (line,) = _report(*SLICE)["series"]

    assert (line["family_trials_before"], line["family_trials_after"]) == (3, 6)
    assert all(candidate["trials"] == 6 for candidate in line["passed"])


def test_the_text_report_prints_the_counts_table(btc_hourly):
    out = StringIO()
    call_command("research_report", *SLICE, stdout=out, stderr=StringIO())

    text = out.getvalue()
    row = next(r for r in text.splitlines() if r.startswith("BTCUSD coinbase 1h"))
    candidates = GenerationRun.objects.get().candidates
    assert row.split()[3:6] == ["offline", "3", "3"]
    assert row.split()[-3:] == ["0", "->", "3"]
    assert int(row.split()[7]) == candidates.filter(outcome=CandidateOutcome.KEPT).count()
    assert "total" in text and "deflated by the family's trials at least 0.95" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--symbol", "NOPE"), "unknown symbol 'NOPE'"),
        (("--symbol", "BTCUSD", "--timeframe", "4h"), "no 4h candles are stored for BTCUSD"),
        (("--timeframe", "7x"), "unknown timeframe '7x'"),
        (("--timeframe", "1d"), "no stored series to report on in 1d"),
        (("--provider", "openai"), "'openai' not configured; configured: offline"),
        (("--count", "0"), "count: must be a whole number from 1 to 10"),
        (("--count", "11"), "count: must be a whole number from 1 to 10"),
        (("--exchange", "coinbase"), "give --symbol too"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_runs_nothing(btc_hourly, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        call_command("research_report", *args, stdout=StringIO(), stderr=StringIO())

    assert not GenerationRun.objects.exists()
    assert not Trial.objects.exists()
