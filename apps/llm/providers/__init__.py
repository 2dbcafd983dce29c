"""LLM providers: one module per vendor SDK behind the project's ``LLMProvider`` protocol. No Django."""

from __future__ import annotations

from functools import lru_cache
from importlib import import_module

from apps.llm.providers.base import LLMProvider, LLMRequest, LLMResponse, ProviderConfig

__all__ = ["PROVIDER_NAMES", "LLMProvider", "LLMRequest", "LLMResponse", "ProviderConfig", "build_provider"]

# Each SDK takes 0.5-1.5 s to import, so a provider's module is imported on first use only.
_IMPLEMENTATIONS = {
    "openai": "apps.llm.providers.openai_provider:OpenAIProvider",
    "anthropic": "apps.llm.providers.anthropic_provider:AnthropicProvider",
    "gemini": "apps.llm.providers.gemini_provider:GeminiProvider",
}
PROVIDER_NAMES = tuple(_IMPLEMENTATIONS)


@lru_cache(maxsize=16)
def build_provider(config: ProviderConfig) -> LLMProvider:
    """The provider for ``config``; the same config gets the same instance (and connection pool)."""
    try:
        module_name, class_name = _IMPLEMENTATIONS[config.name].split(":")
    except KeyError:
        raise ValueError(
            f"Unknown LLM provider {config.name!r}; known: {', '.join(PROVIDER_NAMES)}"
        ) from None
    return getattr(import_module(module_name), class_name)(config)
