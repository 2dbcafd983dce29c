"""Fixtures for the llm tests: a fake LLM server that the real SDKs are pointed at through settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest

from apps.llm.models import LLMCall, LLMCallStatus
from tests.fakes.llm import FakeLLMServer

API_KEYS = {
    "openai": "sk-test-openai-SECRET-0123456789",
    "anthropic": "sk-ant-test-SECRET-0123456789",
    "gemini": "AIza-test-gemini-SECRET-0123456789",
}
MODELS = {"openai": "gpt-4.1-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}
APIS = tuple(API_KEYS)
# The provider a failing one falls through to, in the tests' LLM_PROVIDERS order.
NEXT = {"openai": "anthropic", "anthropic": "gemini", "gemini": "openai"}
CLIENT_TIMEOUT_SECONDS = 0.5


@pytest.fixture
def fake_llm(settings, db) -> Iterator[FakeLLMServer]:
    """All three providers configured with keys and pointed at one fake, with fast retries."""
    with FakeLLMServer() as fake:
        settings.OPENAI_API_KEY = API_KEYS["openai"]
        settings.ANTHROPIC_API_KEY = API_KEYS["anthropic"]
        settings.GEMINI_API_KEY = API_KEYS["gemini"]
        settings.OPENAI_BASE_URL = fake.openai_base_url
        settings.ANTHROPIC_BASE_URL = fake.anthropic_base_url
        settings.GEMINI_BASE_URL = fake.gemini_base_url
        settings.LLM_OPENAI_MODEL = MODELS["openai"]
        settings.LLM_ANTHROPIC_MODEL = MODELS["anthropic"]
        settings.LLM_GEMINI_MODEL = MODELS["gemini"]
        settings.LLM_OPENAI_TIMEOUT_SECONDS = CLIENT_TIMEOUT_SECONDS
        settings.LLM_ANTHROPIC_TIMEOUT_SECONDS = CLIENT_TIMEOUT_SECONDS
        settings.LLM_GEMINI_TIMEOUT_SECONDS = CLIENT_TIMEOUT_SECONDS
        settings.LLM_PROVIDERS = ["openai", "anthropic", "gemini", "offline"]
        settings.LLM_MAX_RETRIES = 1
        settings.LLM_RETRY_BACKOFF_SECONDS = 0.01
        settings.LLM_RETRY_MAX_WAIT_SECONDS = 0.05
        settings.LLM_CACHE_SECONDS = 3600
        settings.LLM_DAILY_TOKEN_BUDGET = 1_000_000
        settings.LLM_DAILY_COST_BUDGET_USD = 5.0
        yield fake


def only(settings, *providers: str) -> None:
    settings.LLM_PROVIDERS = list(providers)


def spend(*, tokens: int = 0, usd: str = "0", at: datetime | None = None) -> LLMCall:
    """A recorded call that used ``tokens`` and ``usd`` (today, or ``at``)."""
    call = LLMCall.objects.create(
        invocation="00000000-0000-0000-0000-000000000001",
        provider="openai",
        model="gpt-4.1-mini",
        purpose="earlier",
        template="t",
        template_version="1",
        input_sha256="0" * 64,
        tokens_in=tokens,
        cost_usd=Decimal(usd),
        status=LLMCallStatus.OK,
    )
    if at is not None:
        LLMCall.objects.filter(pk=call.pk).update(created_at=at)
    return call
