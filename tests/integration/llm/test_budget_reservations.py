"""The daily LLM budget holds across workers: a request reserves its largest cost before it is sent,
concurrent requests never spend more than the budget between them, and each reservation is replaced
by what the request really used."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from apps.llm.errors import LLMUnavailableError
from apps.llm.models import LLMCall, LLMCallStatus
from tests.fakes.llm import Reply
from tests.integration.llm.candidates import VALID, ask
from tests.integration.llm.conftest import only
from tests.integration.trading.threads import run_together

pytestmark = pytest.mark.django_db(transaction=True)
MAX_TOKENS = 100_000  # each request may use up to this much answer: its reservation is at least this


def test_concurrent_requests_never_reserve_more_than_the_budget(fake_llm, settings):
    only(settings, "openai")
    settings.LLM_CACHE_SECONDS = 0
    settings.LLM_MAX_TOKENS = MAX_TOKENS
    settings.LLM_DAILY_TOKEN_BUDGET = int(MAX_TOKENS * 2.5)  # room for two reservations, not three
    settings.LLM_DAILY_COST_BUDGET_USD = 1_000.0
    fake_llm.script("openai", *[Reply.slow(0.4, VALID)] * 6)  # all six in flight at once

    results = run_together(6, lambda i: ask(context={"market": f"request {i}"}))

    answered = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, LLMUnavailableError)]
    assert (len(answered), len(refused)) == (2, 4), results
    assert len(fake_llm.requests("openai")) == 2
    assert all("Daily LLM budget too low for this request" in str(error) for error in refused)
    rows = list(LLMCall.objects.values_list("status", flat=True))
    assert sorted(rows) == sorted([LLMCallStatus.OK] * 2 + [LLMCallStatus.BUDGET_EXCEEDED] * 4)
    used = LLMCall.objects.aggregate(tokens=Sum("tokens_in") + Sum("tokens_out"))["tokens"]
    assert 0 < used < MAX_TOKENS  # the two reservations were replaced by what the answers used


def test_a_request_whose_reservation_fits_goes_and_leaves_only_its_real_use(fake_llm, settings):
    only(settings, "openai")
    settings.LLM_MAX_TOKENS = MAX_TOKENS
    settings.LLM_DAILY_TOKEN_BUDGET = int(MAX_TOKENS * 1.5)
    fake_llm.script("openai", Reply.json(VALID, tokens_in=1_000, tokens_out=300))

    ask()

    (call,) = LLMCall.objects.all()
    assert (call.status, call.tokens_in, call.tokens_out) == (LLMCallStatus.OK, 1_000, 300)
    fake_llm.script("openai", Reply.json(VALID, tokens_in=1_000, tokens_out=300))
    ask(context={"market": "again"})  # 1,300 used: another reservation still fits
    assert LLMCall.objects.filter(status=LLMCallStatus.OK).count() == 2
    settings.LLM_DAILY_TOKEN_BUDGET = MAX_TOKENS  # 1,300 used: a full reservation no longer fits
    with pytest.raises(LLMUnavailableError, match="too low for this request"):
        ask(context={"market": "a third"})
    assert len(fake_llm.requests("openai")) == 2
