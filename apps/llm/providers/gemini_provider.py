"""Google Gemini ``generateContent`` through the official ``google-genai`` SDK (API version v1beta).

``google-genai`` is the maintained successor of the retired ``google-generativeai``. Structured
output is ``response_mime_type="application/json"`` with the schema as ``response_json_schema``
(plain JSON Schema; ``response_schema`` takes Google's OpenAPI subset instead). The SDK defaults to
API version v1, so v1beta is set explicitly. Retries are the service's job: one attempt per call
(``HttpRetryOptions(attempts=1)`` also stops the SDK's own sleep-and-retry on connection errors).
"""

from __future__ import annotations

import time

import httpx2
from google import genai
from google.genai import errors, types

from apps.llm.errors import LLMPermanentError, LLMTemporaryError
from apps.llm.providers.base import (
    LLMRequest,
    LLMResponse,
    ProviderConfig,
    response_from,
    status_error,
    translated_errors,
)

API_VERSION = "v1beta"


class GeminiProvider:
    """``LLMProvider`` over ``genai.Client(...).models.generate_content``."""

    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.model = config.model
        # The client must outlive its calls (NOTES.md): the provider holds it.
        self._client = genai.Client(
            api_key=config.api_key,
            http_options=types.HttpOptions(
                base_url=config.base_url or None,
                api_version=API_VERSION,
                timeout=round(config.timeout_seconds * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        with translated_errors(_translate):
            response = self._client.models.generate_content(
                model=self.model,
                contents=request.user,
                config=types.GenerateContentConfig(
                    system_instruction=request.system,
                    temperature=request.temperature,
                    max_output_tokens=request.max_tokens,
                    response_mime_type="application/json",
                    response_json_schema=request.schema,
                    # No tools are offered: one request, one answer (and no "AFC is enabled" log line).
                    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
                ),
            )
        usage = response.usage_metadata
        return response_from(
            response.text,
            tokens_in=usage and usage.prompt_token_count,
            # Thinking tokens are billed as output.
            tokens_out=usage and (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0),
            started=started,
            raw=response.model_dump(mode="json", exclude_none=True, exclude={"sdk_http_response"}),
        )


def _translate(error: Exception) -> Exception | None:
    if isinstance(error, errors.APIError):
        headers = error.response.headers if error.response is not None else None
        return status_error(error.code, error.message or str(error), headers)
    # google-genai's default HTTP backend is httpx2: its timeouts and refused or dropped connections.
    if isinstance(error, httpx2.TransportError):
        return LLMTemporaryError(f"{type(error).__name__}: {error}")
    if isinstance(error, errors.UnknownApiResponseError):
        return LLMPermanentError(f"{type(error).__name__}: {error}")
    return None
