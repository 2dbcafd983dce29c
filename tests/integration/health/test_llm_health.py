"""The health document's llm_services component lists providers, their last call and the budget (read
back from the snapshot that computed it)."""

from __future__ import annotations

import uuid

import pytest

from apps.llm.models import LLMCall
from tests.integration.health.snapshots import take_snapshot

pytestmark = pytest.mark.django_db


def test_without_a_key_only_the_offline_templates_are_available(staff_client, settings):
    settings.OPENAI_API_KEY = settings.ANTHROPIC_API_KEY = settings.GEMINI_API_KEY = ""
    take_snapshot()

    llm = staff_client.get("/api/health").json()["components"]["llm_services"]

    assert llm["status"] == "degraded"
    assert "offline templates" in llm["message"]
    assert {p["name"] for p in llm["providers"]} >= {"offline", "openai", "anthropic", "gemini"}


def test_a_configured_provider_reports_its_last_call_and_budget(staff_client, settings):
    settings.OPENAI_API_KEY = "sk-test-health-0123456789"
    settings.LLM_PROVIDERS = ["openai", "offline"]
    LLMCall.objects.create(
        invocation=uuid.uuid4(), provider="openai", model="gpt-4.1-mini", purpose="test", template="t",
        template_version="1",
        input_sha256="0" * 64, status="error", error="HTTP 500", latency_ms=12.5,
    )  # fmt: skip
    take_snapshot()

    body = staff_client.get("/api/health").json()
    openai = next(p for p in body["components"]["llm_services"]["providers"] if p["name"] == "openai")

    assert openai["configured"] is True
    assert openai["last_call"]["status"] == "error"
    assert body["components"]["llm_services"]["status"] == "degraded"
    assert "sk-test-health" not in str(body)
