"""LLM commentary on the 30-minute analysis: stored when a provider answers validly, else none with why."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from apps.core import clock
from apps.llm.models import LLMCall
from apps.market.services.analyses import analysis_request, analysis_run
from tests.fakes.llm import Reply

pytestmark = pytest.mark.django_db
SLOT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FRESH = datetime(2019, 10, 17, 10, 20, tzinfo=UTC)  # just after the shipped history's newest candle


def _analyse(instrument):
    row = analysis_request(instrument=instrument, timeframe="1h", slot=SLOT)
    with clock.replaying(FRESH):  # commentary is asked only about fresh data
        return analysis_run(analysis_id=row.pk, fetch=False)


def test_without_an_llm_provider_no_commentary_is_stored_and_the_reason_is(btc_hourly):
    analysis = _analyse(btc_hourly)

    assert analysis.commentary == {"status": "none", "reason": "no LLM provider is configured"}
    assert LLMCall.objects.count() == 0


def test_a_valid_answer_is_stored_with_its_provider(btc_hourly, fake_llm, settings):
    settings.LLM_PROVIDERS = ["openai", "offline"]
    answer = {
        "summary": "Price is consolidating below its 50-bar average.",
        "regime": "range",
        "sentiment": "neutral",
        "confidence": 0.6,
    }
    fake_llm.script("openai", Reply.json(answer))

    analysis = _analyse(btc_hourly)

    assert analysis.commentary["status"] == "ok"
    assert analysis.commentary["provider"] == "openai"
    assert {k: analysis.commentary[k] for k in answer} == answer
    sent = json.dumps(fake_llm.requests("openai")[0].body)
    assert "BTCUSD" in sent
    assert "RSI(14)" in sent


def test_an_answer_that_tries_to_smuggle_code_is_refused_and_nothing_is_stored(
    btc_hourly, fake_llm, settings
):
    settings.LLM_PROVIDERS = ["openai", "offline"]
    bad = {
        "summary": "ok",
        "regime": "__import__('os').system('id')",
        "sentiment": "neutral",
        "confidence": 0.5,
    }
    fake_llm.script("openai", Reply.json(bad), Reply.json(bad))

    analysis = _analyse(btc_hourly)

    assert analysis.commentary["status"] == "none"
    refusal = "regime: \"__import__('os').system('id')\" is not one of ['up', 'down', 'range']"
    assert refusal in analysis.commentary["reason"]
    assert analysis.status == "completed"
