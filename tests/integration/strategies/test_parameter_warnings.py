"""Parameters that matter: strategies warn about parameters no rule reads, the optimiser refuses to
search them, the daily update leaves them out, generation records them, and the shipped strategies
(demo data, offline templates, the README's example) read every parameter they define."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.urls import reverse

from apps.strategies import documents
from apps.strategies.generation.schema import candidate_document
from apps.strategies.generation.templates import templates
from apps.strategies.models import (
    CandidateOutcome,
    DecisionKind,
    OptimizationChunk,
    OptimizationRun,
    Strategy,
)
from apps.strategies.services.daily_update import strategies_daily_update
from apps.strategies.services.generation import generation_create, generation_run
from apps.strategies.services.optimizations import optimization_create
from tests.fakes.llm import Reply
from tests.integration.llm.conftest import only
from tests.integration.strategies.conftest import make_strategy

pytestmark = pytest.mark.django_db

NOW = datetime(2019, 10, 17, 10, 5, tzinfo=UTC)  # just after the newest shipped candle closed
UNUSED = ["rsi_overbought", "rsi_oversold"]  # the brief's thresholds: its rules write 30 and 70
WIRED_RULES = [
    {"condition": "RSI(rsi_period) < rsi_oversold", "action": "buy", "priority": 1},
    {"condition": "RSI(rsi_period) > rsi_overbought", "action": "sell", "priority": 1},
]


def _warned(body: dict[str, Any]) -> list[str]:
    assert all(w["code"] == "unused_parameter" for w in body["warnings"])
    return [w["parameter"] for w in body["warnings"]]


# --- strategies ------------------------------------------------------------------------------------


def test_creating_the_briefs_strategy_warns_about_each_threshold_no_rule_reads(
    api_client, btc_hourly, rsi_document
):
    response = api_client.post("/api/strategies", rsi_document, format="json")

    assert response.status_code == 201  # a warning refuses nothing
    body = response.json()
    assert _warned(body) == UNUSED
    oversold = body["warnings"][1]
    assert oversold["message"] == (
        "no rule reads rsi_oversold; rule 0 ('RSI < 30') writes its value 30 as a number: "
        "write rsi_oversold there to use the parameter"
    )
    assert api_client.get(body["url"]).json()["warnings"] == body["warnings"]
    (listed,) = api_client.get("/api/strategies").json()["results"]
    assert listed["warnings"] == body["warnings"]


def test_a_strategy_whose_rules_read_its_parameters_has_no_warnings(api_client, btc_hourly, rsi_document):
    rsi_document["rules"] = WIRED_RULES

    body = api_client.post("/api/strategies", rsi_document, format="json").json()

    assert body["warnings"] == []


def test_a_parameter_with_no_number_in_the_rules_is_told_to_be_used_or_removed(
    api_client, btc_hourly, rsi_document
):
    rsi_document["rules"] = WIRED_RULES
    rsi_document["parameters"]["lookback"] = 12

    (warning,) = api_client.post("/api/strategies", rsi_document, format="json").json()["warnings"]

    assert warning == {
        "code": "unused_parameter",
        "parameter": "lookback",
        "message": "no rule reads lookback; name it in a condition to use it, or remove it",
    }


def test_editing_the_rules_to_read_the_parameters_clears_the_warnings(api_client, btc_hourly, rsi_document):
    url = api_client.post("/api/strategies", rsi_document, format="json").json()["url"]

    fixed = api_client.patch(url, {"rules": WIRED_RULES}, format="json")
    explicit = api_client.patch(
        url, {"rules": [{"condition": "RSI(14) < rsi_oversold", "action": "buy"}]}, format="json"
    )

    assert (fixed.status_code, fixed.json()["version"], fixed.json()["warnings"]) == (200, 2, [])
    # Explicit arguments read no setting: rsi_period and rsi_overbought are now the unused ones.
    assert _warned(explicit.json()) == ["rsi_overbought", "rsi_period"]
    assert "RSI(14) < rsi_oversold" in explicit.json()["warnings"][1]["message"]


def test_the_api_schema_documents_the_warnings(api_client):
    schema = api_client.get("/api/schema", {"format": "json"}).json()

    components = schema["components"]["schemas"]
    assert components["Strategy"]["properties"]["warnings"]["items"] == {
        "$ref": "#/components/schemas/DocumentWarning"
    }
    assert set(components["DocumentWarning"]["required"]) == {"code", "parameter", "message"}
    assert "warnings" in components["Candidate"]["properties"]


def test_the_admin_strategy_page_shows_the_warnings(admin_client, btc_hourly):
    strategy = make_strategy(btc_hourly)

    page = admin_client.get(reverse("admin:strategies_strategy_change", args=[strategy.pk])).content.decode()

    assert "no rule reads rsi_oversold; rule 0 (&#x27;RSI &lt; 30&#x27;) writes its value 30" in page
    assert "no rule reads rsi_overbought" in page


# --- the optimiser ---------------------------------------------------------------------------------


def test_the_optimiser_refuses_to_search_parameters_no_rule_reads_and_creates_nothing(api_client, btc_hourly):
    strategy = make_strategy(btc_hourly)  # the brief's document: RSI < 30, RSI > 70
    request = {
        "strategy_id": strategy.strategy_id,
        "space": {"rsi_oversold": [20, 25, 30], "rsi_period": [10, 14], "rsi_overbought": [70, 75]},
        "folds": 1,
    }

    response = api_client.post("/api/strategies/optimize", request, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert sorted(error["fields"]["space"]) == UNUSED  # each named; rsi_period is read by the bare RSI
    problem = error["fields"]["space"]["rsi_oversold"][0]
    assert problem.startswith("parameter 'rsi_oversold' is not used by the strategy: no rule reads it")
    assert error["message"].startswith("space: rsi_oversold: parameter 'rsi_oversold' is not used")
    assert OptimizationRun.objects.count() == OptimizationChunk.objects.count() == 0


def test_the_optimise_command_refuses_them_too(btc_hourly):
    strategy = make_strategy(btc_hourly)

    with pytest.raises(Exception, match="parameter 'rsi_oversold' is not used by the strategy"):
        call_command("optimize", strategy.strategy_id, "--param", "rsi_oversold=20,25,30", stdout=StringIO())

    assert OptimizationRun.objects.count() == 0


def test_the_daily_update_searches_only_the_parameters_the_rules_read(settings, btc_hourly):
    # Limits no strategy breaks, so the update re-optimises instead of retiring.
    settings.STRATEGY_RETIRE_MAX_DRAWDOWN_PCT = 100.0
    settings.STRATEGY_RETIRE_MIN_SHARPE = -1000.0
    settings.STRATEGY_RETIRE_MAX_UNDERPERFORMANCE_PCT = 1000.0
    settings.STRATEGY_REOPTIMIZE_MULTIPLIERS = [0.8, 1.25]
    settings.STRATEGY_MIN_ACTIVE = 1
    strategy = make_strategy(btc_hourly)

    strategies_daily_update(now=NOW)

    run = OptimizationRun.objects.get(strategy=strategy, trigger="daily_update")
    assert run.space == {"rsi_period": [11, 14, 18]}  # never rsi_oversold or rsi_overbought
    assert run.n_trials == 3


# --- generation ------------------------------------------------------------------------------------


def test_a_generated_candidate_with_an_unused_parameter_is_judged_kept_and_warned_about(
    fake_llm, settings, btc_hourly, api_client
):
    only(settings, "openai")
    settings.GENERATION_WINDOW_BARS = 4320
    settings.GENERATION_HOLDOUT_FRACTION = 0.3
    settings.GENERATION_MIN_SHARPE = 0.5
    settings.GENERATION_AUTO_DEPLOY = False
    settings.STRATEGY_MIN_DEFLATED_SHARPE = 0.6  # its holdout's is 0.70: 7 trades are weak evidence
    # Kept on the shipped data (holdout +3.5 % against buy-and-hold -19.6 %); rsi_oversold changes nothing.
    candidate = {
        "name": "Deep RSI dip",
        "type": "mean_reversion",
        "rationale": "Buy deep dips.",
        "parameters": [
            {"name": "rsi_oversold", "value": 20},
            {"name": "stop_loss_pct", "value": 0.02},
            {"name": "take_profit_pct", "value": 0.03},
        ],
        "indicators": ["RSI"],
        "rules": [
            {"condition": "RSI(14) < 20", "action": "buy", "priority": 1},
            {"condition": "RSI(14) > 55", "action": "sell", "priority": 1},
        ],
    }
    fake_llm.script("openai", Reply.json({"strategies": [candidate]}))

    run = generation_run(run_id=generation_create(instrument=btc_hourly, timeframe="1h", count=1).pk)

    (judged,) = run.candidates.all()
    assert judged.outcome == CandidateOutcome.KEPT, judged.reason
    strategy = judged.strategy
    assert strategy.current_version.parameters["rsi_oversold"] == 20  # kept as proposed
    decision = strategy.decisions.get(kind=DecisionKind.GENERATED)
    assert [w["parameter"] for w in decision.numbers["warnings"]] == ["rsi_oversold"]
    detail = api_client.get(reverse("strategies-generation-detail", kwargs={"run_id": run.pk})).json()
    assert _warned(detail["candidates"][0]) == ["rsi_oversold"]
    assert "rule 0 ('RSI(14) < 20') writes its value 20" in detail["candidates"][0]["warnings"][0]["message"]
    assert _warned(api_client.get(f"/api/strategies/{strategy.strategy_id}").json()) == ["rsi_oversold"]


# --- what ships ------------------------------------------------------------------------------------


def test_every_demo_strategy_reads_every_parameter_it_defines(api_client, btc_hourly):
    call_command("load_demo_strategies", "--paused", stdout=StringIO())

    strategies = Strategy.objects.all()
    assert strategies.count() == 4
    for strategy in strategies:
        assert api_client.get(f"/api/strategies/{strategy.strategy_id}").json()["warnings"] == []


def test_the_readmes_optimise_example_searches_the_demo_rsi_strategy(btc_hourly):
    call_command("load_demo_strategies", "--paused", stdout=StringIO())
    rsi = Strategy.objects.get(name="RSI Mean Reversion")

    # python manage.py optimize STRATEGY_ID --param rsi_oversold=20,25,30 --param rsi_period=10:20:2
    run = optimization_create(
        strategy=rsi, space={"rsi_oversold": [20, 25, 30], "rsi_period": {"min": 10, "max": 20, "step": 2}}
    )

    assert run.n_trials == 18


def test_every_offline_template_reads_every_parameter_it_defines():
    for regime, group in templates().items():
        for template in group:
            document = candidate_document(template)
            found = documents.document_warnings(parameters=document["parameters"], rules=document["rules"])
            assert found == [], (regime, template["name"])


def _readme_strategies() -> list[dict[str, Any]]:
    readme = (Path(django_settings.BASE_DIR) / "README.md").read_text()
    section = readme.split("\n## Strategies\n", 1)[1].split("\n## ", 1)[0]
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.DOTALL)]
    return [block for block in blocks if "rules" in block]


def test_the_readmes_strategy_example_is_valid_and_reads_every_parameter(api_client, btc_hourly):
    (example,) = _readme_strategies()

    assert (
        documents.document_problems(
            parameters=example["parameters"], indicators=example["indicators"], rules=example["rules"]
        )
        == {}
    )
    response = api_client.post("/api/strategies", example, format="json")
    assert (response.status_code, response.json()["warnings"]) == (201, [])
