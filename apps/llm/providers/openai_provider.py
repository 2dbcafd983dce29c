"""OpenAI Chat Completions through the official ``openai`` SDK; also any OpenAI-compatible server.

Chat Completions (not the Responses API) because it is what OpenAI-compatible servers speak: a
local model or another vendor is reached by pointing ``base_url`` at it. Structured output is
``response_format`` of type ``json_schema`` (strict). Retries are the service's job: the SDK's own
are off.
"""

from __future__ import annotations

import time

import openai

from apps.llm.providers.base import (
    LLMRequest,
    LLMResponse,
    ProviderConfig,
    response_from,
    sdk_error_translator,
    translated_errors,
)


class OpenAIProvider:
    """``LLMProvider`` over ``openai.OpenAI(...).chat.completions``."""

    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.model = config.model
        self._client = openai.OpenAI(
            api_key=config.api_key,
            base_url=config.base_url or None,
            timeout=config.timeout_seconds,
            max_retries=0,
        )

    def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        with translated_errors(_translate):
            completion = self._client.chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": request.system},
                    {"role": "user", "content": request.user},
                ],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": request.schema, "strict": True},
                },
                temperature=request.temperature,
                max_completion_tokens=request.max_tokens,
            )
        message = completion.choices[0].message if completion.choices else None
        usage = completion.usage
        return response_from(
            # A refusal comes instead of content; it fails validation like any other non-answer.
            message and (message.content or message.refusal),
            tokens_in=usage and usage.prompt_tokens,
            tokens_out=usage and usage.completion_tokens,
            started=started,
            raw=completion.model_dump(mode="json"),
        )


def _vendor_message(error: openai.APIStatusError) -> str:
    """The message of OpenAI's error body, without the SDK's "Error code: ..." prefix."""
    body = error.body if isinstance(error.body, dict) else {}
    return str(body.get("message") or error.message)


_translate = sdk_error_translator(
    status_error_type=openai.APIStatusError,
    connection_error_type=openai.APIConnectionError,
    base_error_type=openai.OpenAIError,
    vendor_message=_vendor_message,
)
