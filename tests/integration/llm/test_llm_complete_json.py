"""llm_complete_json with each real SDK against the fake: answers, repair, validation, retries,
fall-through, budget, cache, offline fallback and secrets."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest

from apps.llm.errors import LLMUnavailableError
from apps.llm.models import LLMCall
from tests.fakes.llm import Reply
from tests.integration.llm.candidates import CONTEXT, INSTRUCTIONS, VALID, ask, offline_candidate
from tests.integration.llm.conftest import API_KEYS, APIS, MODELS, NEXT, only, spend

pytestmark = pytest.mark.django_db


def statuses() -> list[tuple[str, str]]:
    return list(LLMCall.objects.order_by("id").values_list("provider", "status"))


def user_message_of(request) -> str:
    """The user's text in a recorded request, whichever vendor's shape it has."""
    body = request.body
    if request.api == "gemini":
        return body["contents"][0]["parts"][0]["text"]
    return body["messages"][-1]["content"]


@pytest.mark.parametrize("api", APIS)
def test_a_valid_answer_is_returned_and_recorded(fake_llm, settings, api):
    only(settings, api)
    fake_llm.script(api, Reply.json(VALID, tokens_in=1000, tokens_out=200))

    result = ask()

    assert (result.data, result.provider, result.model, result.status) == (VALID, api, MODELS[api], "ok")
    call = LLMCall.objects.get(pk=result.call_id)
    prices = settings.LLM_PRICE_TABLE[MODELS[api]]
    expected_cost = (Decimal(str(prices["input"])) * 1000 + Decimal(str(prices["output"])) * 200) / 1_000_000
    assert (call.tokens_in, call.tokens_out, call.cost_usd) == (
        1000,
        200,
        expected_cost.quantize(Decimal("1e-6")),
    )
    assert call.latency_ms > 0
    assert json.loads(call.answer) == VALID
    assert (call.purpose, call.template, call.template_version) == (
        "strategy_generation",
        "strategy_candidate",
        "1",
    )
    assert len(call.input_sha256) == 64
    assert result.call_ids == (call.pk,)


@pytest.mark.parametrize("api", APIS)
def test_the_context_reaches_the_model_as_delimited_data_after_the_instructions(fake_llm, settings, api):
    only(settings, api)
    fake_llm.script(api, Reply.json(VALID))

    ask()

    message = user_message_of(fake_llm.requests(api)[0])
    assert message.startswith(INSTRUCTIONS)
    data = message.split("<data>\n", 1)[1].split("\n</data>", 1)[0]
    assert json.loads(data) == CONTEXT


@pytest.mark.parametrize("api", APIS)
def test_malformed_json_gets_one_repair_attempt_that_can_succeed(fake_llm, settings, api):
    only(settings, api)
    fake_llm.script(api, Reply.malformed_json(), Reply.json(VALID))

    result = ask()

    assert (result.status, result.data) == ("repaired", VALID)
    assert statuses() == [(api, "invalid_output"), (api, "repaired")]
    _, repair = fake_llm.requests(api)
    assert "not valid JSON" in LLMCall.objects.get(status="invalid_output").error
    assert "Why it was rejected: The answer is not valid JSON" in user_message_of(repair)
    assert '"stop_loss_pct": 0.0' in user_message_of(repair)  # the rejected answer is quoted


@pytest.mark.parametrize("api", APIS)
def test_a_failed_repair_falls_through_to_the_next_provider(fake_llm, settings, api):
    only(settings, api, NEXT[api])
    fake_llm.script(api, Reply.malformed_json(), Reply.answer("I cannot produce JSON today."))
    fake_llm.script(NEXT[api], Reply.json(VALID))

    result = ask()

    assert (result.provider, result.status) == (NEXT[api], "ok")
    assert statuses() == [(api, "invalid_output"), (api, "invalid_output"), (NEXT[api], "ok")]
    assert result.failures == (f"{api}: invalid output, also after one repair attempt: {_not_json()}",)


def _not_json() -> str:
    return "The answer is not valid JSON: Expecting value at line 1 column 1."


SMUGGLED = "__import__('os').system('touch {marker}')"


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({**VALID, "position_size": 1.0}, "unknown field(s): position_size"),
        ({**VALID, "indicator": "SUPERTREND"}, "unknown indicator 'SUPERTREND'"),
        ({**VALID, "period": 5000}, "period 5000 is out of range 2..200"),
        ({**VALID, "indicator": SMUGGLED}, "unknown indicator \"__import__('os').system('touch"),
    ],
    ids=["extra-field", "unknown-indicator", "out-of-range", "smuggled-code"],
)
def test_valid_json_the_validator_rejects_is_never_used(fake_llm, settings, tmp_path, api, answer, reason):
    only(settings, api)
    marker = tmp_path / "executed"
    answer = {
        key: value.format(marker=marker) if isinstance(value, str) else value for key, value in answer.items()
    }
    fake_llm.script(api, Reply.json(answer), Reply.json(answer))

    with pytest.raises(LLMUnavailableError, match="invalid output, also after one repair attempt") as raised:
        ask()

    assert reason in raised.value.failures[0]
    assert statuses() == [(api, "invalid_output"), (api, "invalid_output")]
    assert all(reason in error for error in LLMCall.objects.values_list("error", flat=True))
    assert f"Why it was rejected: {reason}" in user_message_of(fake_llm.requests(api)[1])
    assert not marker.exists()


@pytest.mark.parametrize("api", APIS)
def test_a_rate_limit_is_retried_and_then_answered(fake_llm, settings, api):
    only(settings, api)
    fake_llm.script(api, Reply.rate_limited(), Reply.json(VALID))

    result = ask()

    assert (result.provider, result.status, result.data) == (api, "ok", VALID)
    assert statuses() == [(api, "error"), (api, "ok")]
    assert "HTTP 429" in LLMCall.objects.get(status="error").error
    assert len(fake_llm.requests(api)) == 2


@pytest.mark.parametrize(("retry_after", "least", "most"), [(0.3, 0.3, 2.0), (30, 0.0, 2.0)])
def test_a_retry_waits_as_long_as_the_provider_asks_up_to_the_cap(
    fake_llm, settings, retry_after, least, most
):
    only(settings, "anthropic")
    settings.LLM_RETRY_MAX_WAIT_SECONDS = 0.5
    fake_llm.script("anthropic", Reply.rate_limited(retry_after=retry_after), Reply.json(VALID))

    ask()

    first, second = fake_llm.requests("anthropic")
    waited = second.received_at - first.received_at
    assert least <= waited < most


@pytest.mark.parametrize("api", APIS)
def test_a_server_error_is_retried_then_falls_through_to_the_next_provider(fake_llm, settings, api):
    only(settings, api, NEXT[api])
    fake_llm.script(api, Reply.server_error(500), Reply.server_error(500))
    fake_llm.script(NEXT[api], Reply.json(VALID))

    result = ask()

    assert (result.provider, result.data) == (NEXT[api], VALID)
    assert statuses() == [(api, "error"), (api, "error"), (NEXT[api], "ok")]
    assert len(fake_llm.requests(api)) == 2  # LLM_MAX_RETRIES = 1
    assert "HTTP 500" in result.failures[0] and "gave up after 2 attempts" in result.failures[0]


@pytest.mark.parametrize("api", APIS)
def test_a_timeout_is_retried_then_falls_through_to_the_next_provider(fake_llm, settings, api):
    only(settings, api, NEXT[api])
    fake_llm.script(api, Reply.slow(3.0, VALID), Reply.slow(3.0, VALID))
    fake_llm.script(NEXT[api], Reply.json(VALID))

    result = ask()

    assert result.provider == NEXT[api]
    assert statuses() == [(api, "error"), (api, "error"), (NEXT[api], "ok")]
    assert all(call.latency_ms >= 400 for call in LLMCall.objects.filter(status="error"))  # timeout 0.5 s


def test_a_permanent_error_is_not_retried(fake_llm, settings):
    only(settings, "openai", "gemini")
    fake_llm.script("openai", Reply(status=404, error_message="The model does not exist."))
    fake_llm.script("gemini", Reply.json(VALID))

    result = ask()

    assert result.provider == "gemini"
    assert len(fake_llm.requests("openai")) == 1
    assert result.failures == ("openai: HTTP 404: The model does not exist.",)


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("tokens", "usd"), [(1_000_000, "0"), (0, "5.00")], ids=["tokens", "cost"])
def test_a_spent_daily_budget_refuses_without_a_request(fake_llm, settings, api, tokens, usd):
    only(settings, api)
    spend(tokens=tokens, usd=usd)
    fake_llm.script(api, Reply.json(VALID))

    with pytest.raises(LLMUnavailableError, match="Daily LLM budget spent"):
        ask()

    refused = LLMCall.objects.get(status="budget_exceeded")
    assert refused.provider == api
    assert "no LLM calls until 00:00 UTC" in refused.error
    assert fake_llm.requests() == []


def test_a_spent_budget_leaves_the_offline_fallback(fake_llm, settings):
    spend(tokens=2_000_000)

    result = ask(offline_fallback=offline_candidate)

    assert (result.provider, result.model, result.is_offline) == ("offline", "offline", True)
    assert statuses()[1:] == [("openai", "budget_exceeded"), ("anthropic", "budget_exceeded"),
                              ("gemini", "budget_exceeded"), ("offline", "ok")]  # fmt: skip
    assert fake_llm.requests() == []


@pytest.mark.parametrize("api", APIS)
def test_a_repeat_is_answered_from_the_cache(fake_llm, settings, api):
    only(settings, api)
    fake_llm.script(api, Reply.json(VALID))
    first = ask()

    repeat = ask()

    assert (repeat.status, repeat.data, repeat.provider) == ("cached", first.data, api)
    cached = LLMCall.objects.get(pk=repeat.call_id)
    assert (cached.tokens_in, cached.tokens_out, cached.cost_usd) == (0, 0, Decimal(0))
    assert cached.input_sha256 == LLMCall.objects.get(pk=first.call_id).input_sha256
    assert len(fake_llm.requests(api)) == 1


def test_credential_shaped_text_in_an_answer_is_stored_and_served_verbatim(fake_llm, settings):
    only(settings, "openai")
    answer = {"note": "api_key=abc123456789 is the example in the docs"}
    fake_llm.script("openai", Reply.json(answer))

    first = ask(validate=lambda data: None)
    repeat = ask(validate=lambda data: None)

    assert first.data == repeat.data == answer
    assert json.loads(LLMCall.objects.get(pk=first.call_id).answer) == answer


def test_a_different_context_is_not_answered_from_the_cache(fake_llm, settings):
    only(settings, "openai")
    fake_llm.script("openai", Reply.json(VALID), Reply.json({**VALID, "period": 21}))
    ask()

    other = ask(context={**CONTEXT, "rsi_14": 77.0})

    assert (other.status, other.data["period"]) == ("ok", 21)


def test_the_cache_expires(fake_llm, settings):
    only(settings, "openai")
    settings.LLM_CACHE_SECONDS = 0
    fake_llm.script("openai", Reply.json(VALID), Reply.json(VALID))
    ask()

    assert ask().status == "ok"
    assert len(fake_llm.requests("openai")) == 2


def test_a_cached_answer_the_validator_now_rejects_is_asked_again(fake_llm, settings):
    only(settings, "openai")
    fake_llm.script("openai", Reply.json(VALID), Reply.json({**VALID, "period": 20}))
    ask()

    def stricter(data):
        if data["period"] < 20:
            raise ValueError("period must be at least 20 now")

    again = ask(validate=stricter)

    assert (again.status, again.data["period"]) == ("ok", 20)


def test_the_offline_fallback_answers_when_no_key_is_configured(fake_llm, settings):
    settings.OPENAI_API_KEY = settings.ANTHROPIC_API_KEY = settings.GEMINI_API_KEY = ""

    result = ask(offline_fallback=offline_candidate, context={**CONTEXT, "regime": "trending"})

    assert (result.provider, result.status, result.data["name"]) == ("offline", "ok", "Offline EMA trend")
    assert result.failures == (
        "openai: no API key configured",
        "anthropic: no API key configured",
        "gemini: no API key configured",
    )
    assert statuses() == [("offline", "ok")]
    assert LLMCall.objects.get().model == "offline"
    assert fake_llm.requests() == []


def test_an_invalid_offline_answer_is_refused_too(fake_llm, settings):
    only(settings, "offline")

    with pytest.raises(LLMUnavailableError, match="offline: invalid output: period 1 is out of range"):
        ask(offline_fallback=lambda context: {**VALID, "period": 1})

    assert statuses() == [("offline", "invalid_output")]


def test_with_nothing_left_to_ask_it_says_why_each_provider_failed(fake_llm, settings):
    only(settings, "openai", "offline")
    fake_llm.script("openai", Reply(status=401, error_message="Invalid API key."))

    with pytest.raises(LLMUnavailableError) as raised:
        ask()

    assert raised.value.failures == [
        "openai: HTTP 401: Invalid API key.",
        "offline: no offline fallback for this purpose",
    ]


def test_a_named_provider_is_the_only_one_asked(fake_llm, settings):
    fake_llm.script("gemini", Reply.json(VALID))

    result = ask(provider="gemini")

    assert result.provider == "gemini"
    assert [request.api for request in fake_llm.requests()] == ["gemini"]


def test_an_unknown_provider_name_is_refused(fake_llm):
    with pytest.raises(ValueError, match="Unknown LLM provider 'gpt5'"):
        ask(provider="gpt5")


def test_after_the_deadline_only_the_offline_fallback_is_used(fake_llm, settings):
    settings.LLM_DEADLINE_SECONDS = 0

    result = ask(offline_fallback=offline_candidate)

    assert result.is_offline
    assert "LLM_DEADLINE_SECONDS" in result.failures[0]
    assert fake_llm.requests() == []


@pytest.mark.parametrize("api", APIS)
def test_api_keys_never_reach_the_records_or_the_logs(fake_llm, settings, caplog, api):
    only(settings, api, NEXT[api])
    key = API_KEYS[api]
    fake_llm.script(api, Reply(status=401, error_message=f"Incorrect API key provided: {key}."))
    fake_llm.script(NEXT[api], Reply.json(VALID))

    with caplog.at_level(logging.DEBUG):
        result = ask()

    assert result.provider == NEXT[api]
    sent = fake_llm.requests(api)[0].headers
    assert any(key in value for value in sent.values())  # it was sent: the key is real in this test
    assert "Incorrect API key provided: [REDACTED]." in LLMCall.objects.get(provider=api).error
    records = json.dumps(list(LLMCall.objects.values()), default=str)
    for secret in API_KEYS.values():
        assert secret not in records
        assert secret not in caplog.text
        assert all(secret not in failure for failure in result.failures)
