"""Provider status for the health document, the daily budget, the call list and the admin pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.llm import selectors
from apps.llm.models import LLMCall
from tests.fakes.llm import Reply
from tests.integration.llm.candidates import VALID, ask, offline_candidate
from tests.integration.llm.conftest import MODELS, only, spend

pytestmark = pytest.mark.django_db


def test_provider_status_shows_each_provider_in_order_with_its_last_call_and_the_budget(fake_llm, settings):
    only(settings, "gemini", "openai", "offline")
    settings.ANTHROPIC_API_KEY = ""
    fake_llm.script("gemini", Reply.json(VALID, tokens_in=600, tokens_out=400))
    ask()
    ask(provider="offline", offline_fallback=offline_candidate)

    status = {entry["name"]: entry for entry in selectors.provider_status()}

    assert list(status) == ["gemini", "openai", "offline", "anthropic"]
    assert [status[name]["configured"] for name in status] == [True, True, True, False]
    assert status["gemini"]["model"] == MODELS["gemini"]
    assert status["gemini"]["last_call"]["status"] == "ok"
    assert status["gemini"]["last_call"]["latency_ms"] > 0
    assert status["openai"]["last_call"] is None
    assert status["offline"]["model"] == "offline"
    assert status["offline"]["last_call"]["status"] == "ok"
    spent_usd = (Decimal("0.30") * 600 + Decimal("2.50") * 400) / 1_000_000
    assert status["gemini"]["budget_left_today"] == {
        "tokens": 1_000_000 - 1000,
        "usd": float(Decimal(5) - spent_usd),
    }
    assert status["offline"]["budget_left_today"] is None


def test_a_cached_answer_is_not_the_providers_last_call(fake_llm, settings):
    only(settings, "openai")
    fake_llm.script("openai", Reply.json(VALID))
    first = ask()
    assert ask().status == "cached"

    (openai,) = [entry for entry in selectors.provider_status() if entry["name"] == "openai"]

    assert openai["last_call"]["at"] == LLMCall.objects.get(pk=first.call_id).created_at.isoformat()


def test_the_budget_counts_only_today_in_utc(settings):
    settings.LLM_DAILY_TOKEN_BUDGET = 10_000
    settings.LLM_DAILY_COST_BUDGET_USD = 2.0
    midnight = datetime.combine(timezone.now().date(), datetime.min.time(), tzinfo=UTC)
    spend(tokens=9_000, usd="1.50", at=midnight - timedelta(seconds=1))
    spend(tokens=2_500, usd="0.25", at=midnight)

    budget = selectors.budget_today()

    assert (budget.tokens_used, budget.usd_used) == (2_500, Decimal("0.25"))
    assert (budget.tokens_left, budget.usd_left, budget.spent) == (7_500, Decimal("1.75"), False)


def test_the_call_list_filters_by_provider_status_purpose_and_day(fake_llm, settings):
    only(settings, "openai")
    fake_llm.script("openai", Reply.rate_limited(), Reply.json(VALID))
    ask()
    yesterday = spend(at=timezone.now() - timedelta(days=1))

    assert selectors.call_list(provider="openai", status="error").count() == 1
    assert selectors.call_list(purpose="strategy_generation").count() == 2
    assert list(selectors.call_list(day=(timezone.now() - timedelta(days=1)).date())) == [yesterday]


@pytest.fixture
def admin_client(client, db):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "correct horse battery")
    client.force_login(admin)
    return client


def test_the_admin_lists_calls_with_cost_totals_of_the_filtered_rows(fake_llm, settings, admin_client):
    only(settings, "openai", "anthropic")
    fake_llm.script("openai", Reply.server_error(), Reply.server_error())
    fake_llm.script("anthropic", Reply.json(VALID, tokens_in=2000, tokens_out=1000))
    ask()

    everything = admin_client.get("/admin/llm/llmcall/")
    anthropic_only = admin_client.get("/admin/llm/llmcall/?provider=anthropic&status__exact=ok")

    assert everything.status_code == 200
    assert "Shown calls: <strong>3</strong>" in everything.text
    assert "estimated cost <strong>$0.0070</strong>" in everything.text  # 2000 x $1/M + 1000 x $5/M
    assert "Shown calls: <strong>1</strong>" in anthropic_only.text
    assert "in <strong>2000</strong>, out <strong>1000</strong>" in anthropic_only.text


def test_the_admin_never_adds_edits_or_deletes_calls(fake_llm, settings, admin_client):
    only(settings, "openai")
    fake_llm.script("openai", Reply.json(VALID))
    call = LLMCall.objects.get(pk=ask().call_id)

    assert admin_client.get("/admin/llm/llmcall/add/").status_code == 403
    page = admin_client.get(f"/admin/llm/llmcall/{call.pk}/change/")
    assert page.status_code == 200
    assert 'name="status"' not in page.text  # every field is read-only
    assert admin_client.post(f"/admin/llm/llmcall/{call.pk}/change/", {"status": "error"}).status_code == 403
    # The day's budget is summed from these rows: deleting one would hand its cost back.
    assert admin_client.post(f"/admin/llm/llmcall/{call.pk}/delete/", {"post": "yes"}).status_code == 403
    admin_client.post("/admin/llm/llmcall/", {"action": "delete_selected", "_selected_action": [call.pk]})
    call.refresh_from_db()
    assert call.status == "ok"


def test_the_admin_search_takes_any_text(admin_client):
    assert admin_client.get("/admin/llm/llmcall/?q=not-a-uuid").status_code == 200
