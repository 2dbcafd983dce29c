"""LLM settings: providers without a key are left out, offline comes last, bad values fail at start."""

from __future__ import annotations

import json
import subprocess

from tests.settings_process import fresh_settings

_LLM_ENVIRONMENT = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "LLM_PROVIDERS",
    "LLM_PRICE_TABLE",
)

_PRINTED = {"providers": "LLM_PROVIDERS", "prices": "LLM_PRICE_TABLE"}


def _settings(**env: str) -> subprocess.CompletedProcess:
    """The development settings as a fresh process sees them with ``env`` (and no other of ours)."""
    return fresh_settings(
        {"providers": "LLM_PROVIDERS", "prices": "LLM_PRICE_TABLE"}, _LLM_ENVIRONMENT, **env
    )


def _loaded(**env: str) -> dict:
    result = _settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_without_keys_only_offline_is_configured():
    assert _loaded()["providers"] == ["offline"]


def test_providers_with_a_key_come_in_the_default_order_then_offline():
    loaded = _loaded(GEMINI_API_KEY="g-key", OPENAI_API_KEY="o-key")
    assert loaded["providers"] == ["openai", "gemini", "offline"]


def test_the_order_comes_from_llm_providers():
    loaded = _loaded(
        LLM_PROVIDERS="gemini,anthropic", GEMINI_API_KEY="g", ANTHROPIC_API_KEY="a", OPENAI_API_KEY="o"
    )
    assert loaded["providers"] == ["gemini", "anthropic", "offline"]


def test_an_unknown_provider_fails_at_start():
    result = _settings(LLM_PROVIDERS="openai,gpt5")
    assert result.returncode != 0
    assert "LLM_PROVIDERS names unknown providers: gpt5" in result.stderr


def test_the_price_table_takes_additions_and_overrides_from_json():
    prices = {"llama-3.1-70b": {"input": 0.1, "output": 0.2}, "gpt-4.1-mini": {"input": 9, "output": 9}}
    loaded = _loaded(LLM_PRICE_TABLE=json.dumps(prices))["prices"]
    assert loaded["llama-3.1-70b"] == {"input": 0.1, "output": 0.2}
    assert loaded["gpt-4.1-mini"] == {"input": 9, "output": 9}
    assert loaded["claude-haiku-4-5"] == {"input": 1.0, "output": 5.0}


def test_a_malformed_price_fails_at_start():
    result = _settings(LLM_PRICE_TABLE='{"my-model": 0.5}')
    assert result.returncode != 0
    assert "LLM_PRICE_TABLE['my-model'] must be" in result.stderr
