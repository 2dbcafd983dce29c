"""Each vendor SDK, run for real against the local fake, answers through the project's interface."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.llm.errors import LLMPermanentError, LLMTemporaryError
from apps.llm.providers import LLMRequest, ProviderConfig, build_provider
from tests.fakes.llm import FakeLLMServer, Reply

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "period": {"type": "integer", "minimum": 2, "maximum": 200}},
    "required": ["name", "period"],
    "additionalProperties": False,
}
REQUEST = LLMRequest(system="You design strategies.", user="Propose one.", schema=SCHEMA, temperature=0.3)
KEYS = {"openai": "sk-unit-openai-0001", "anthropic": "sk-ant-unit-0002", "gemini": "AIza-unit-gemini-0003"}
MODELS = {"openai": "gpt-test", "anthropic": "claude-test", "gemini": "gemini-test"}
APIS = tuple(KEYS)


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


def provider_for(fake: FakeLLMServer, api: str, timeout: float = 5.0):
    base_url = {
        "openai": fake.openai_base_url,
        "anthropic": fake.anthropic_base_url,
        "gemini": fake.gemini_base_url,
    }
    config = ProviderConfig(
        name=api, model=MODELS[api], api_key=KEYS[api], base_url=base_url[api], timeout_seconds=timeout
    )
    return build_provider(config)


@pytest.mark.parametrize("api", APIS)
def test_it_returns_the_answer_with_its_usage(fake, api):
    fake.script(api, Reply.json({"name": "RSI dip", "period": 14}, tokens_in=321, tokens_out=54))

    response = provider_for(fake, api).complete(REQUEST)

    assert response.parsed == {"name": "RSI dip", "period": 14}
    assert response.text == '{"name": "RSI dip", "period": 14}'
    assert (response.tokens_in, response.tokens_out) == (321, 54)
    assert response.latency_ms > 0
    assert response.raw  # the vendor's whole answer, for debugging


@pytest.mark.parametrize("api", APIS)
def test_a_non_json_answer_comes_back_unparsed(fake, api):
    fake.script(api, Reply.answer("Sure! Here is a strategy: buy low, sell high."))

    response = provider_for(fake, api).complete(REQUEST)

    assert response.parsed is None
    assert response.text.startswith("Sure!")


def test_openai_asks_for_strict_json_schema_output(fake):
    fake.script("openai", Reply.json({"name": "x", "period": 14}))
    provider_for(fake, "openai").complete(REQUEST)

    (request,) = fake.requests("openai")
    assert request.headers["authorization"] == f"Bearer {KEYS['openai']}"
    assert request.body["model"] == "gpt-test"
    assert request.body["messages"] == [
        {"role": "system", "content": "You design strategies."},
        {"role": "user", "content": "Propose one."},
    ]
    assert request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    }
    assert (request.body["temperature"], request.body["max_completion_tokens"]) == (0.3, 4096)


def test_anthropic_asks_for_json_schema_output(fake):
    fake.script("anthropic", Reply.json({"name": "x", "period": 14}))
    provider_for(fake, "anthropic").complete(REQUEST)

    (request,) = fake.requests("anthropic")
    # anthropic 2.x may send the key as a bearer token instead of x-api-key (NOTES.md)
    sent = {request.headers.get("x-api-key"), request.headers.get("authorization")}
    assert sent & {KEYS["anthropic"], f"Bearer {KEYS['anthropic']}"}
    assert request.body["system"] == "You design strategies."
    assert request.body["messages"] == [{"role": "user", "content": "Propose one."}]
    output_format = request.body["output_config"]["format"]
    assert output_format["type"] == "json_schema"
    assert output_format["schema"]["required"] == ["name", "period"]
    assert output_format["schema"]["additionalProperties"] is False
    assert request.body["max_tokens"] == 4096
    assert "temperature" not in request.body  # this SDK version's Messages API has none


def test_gemini_asks_v1beta_for_json_output_with_the_schema(fake):
    fake.script("gemini", Reply.json({"name": "x", "period": 14}))
    provider_for(fake, "gemini").complete(REQUEST)

    (request,) = fake.requests("gemini")
    assert request.path == "/v1beta/models/gemini-test:generateContent"
    assert request.headers["x-goog-api-key"] == KEYS["gemini"]
    assert request.body["systemInstruction"]["parts"] == [{"text": "You design strategies."}]
    assert request.body["contents"][0]["parts"] == [{"text": "Propose one."}]
    config = request.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == SCHEMA
    assert (config["temperature"], config["maxOutputTokens"]) == (0.3, 4096)


@pytest.mark.parametrize("api", APIS)
def test_a_rate_limit_is_a_temporary_error_with_the_wait_asked_for(fake, api):
    fake.script(api, Reply.rate_limited(retry_after=7))

    with pytest.raises(LLMTemporaryError, match="HTTP 429") as raised:
        provider_for(fake, api).complete(REQUEST)
    assert raised.value.retry_after == 7.0
    assert len(fake.requests(api)) == 1  # the SDK's own retries are off: the service decides


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_temporary(fake, api, status):
    fake.script(api, Reply.server_error(status))

    with pytest.raises(LLMTemporaryError, match=f"HTTP {status}"):
        provider_for(fake, api).complete(REQUEST)
    assert len(fake.requests(api)) == 1


@pytest.mark.parametrize("api", APIS)
def test_a_timeout_is_temporary(fake, api):
    fake.script(api, Reply.slow(3.0, {"name": "late", "period": 14}))

    with pytest.raises(LLMTemporaryError):
        provider_for(fake, api, timeout=0.3).complete(REQUEST)
    assert len(fake.requests(api)) == 1


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("status", [400, 401, 404])
def test_a_client_error_is_permanent(fake, api, status):
    fake.script(api, Reply(status=status, error_message="Nope."))

    with pytest.raises(LLMPermanentError, match=f"HTTP {status}"):
        provider_for(fake, api).complete(REQUEST)


def test_an_unknown_provider_name_is_refused():
    config = ProviderConfig(name="skynet", model="m", api_key="k", base_url=None, timeout_seconds=1)
    with pytest.raises(ValueError, match="Unknown LLM provider 'skynet'"):
        build_provider(config)


def test_the_api_key_is_kept_out_of_the_config_repr():
    config = ProviderConfig(
        name="openai", model="m", api_key="sk-do-not-print", base_url=None, timeout_seconds=1
    )
    assert "sk-do-not-print" not in repr(config)
