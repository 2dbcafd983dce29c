"""Anthropic Messages through the official ``anthropic`` SDK.

Structured output is the Messages API's native ``output_config.format`` (``json_schema``), with the
schema passed through the SDK's ``transform_schema`` (it moves the constraints the API does not
enforce, such as ``minimum``, into descriptions; the project validates them afterwards). This SDK
version's Messages API takes no ``temperature``, so ``LLMRequest.temperature`` is not sent.
Retries are the service's job: the SDK's own are off.
"""

from __future__ import annotations

import time

import anthropic

from apps.llm.providers.base import (
    LLMRequest,
    LLMResponse,
    ProviderConfig,
    response_from,
    sdk_error_translator,
    translated_errors,
)


class AnthropicProvider:
    """``LLMProvider`` over ``anthropic.Anthropic(...).messages``."""

    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.model = config.model
        self._client = anthropic.Anthropic(
            api_key=config.api_key,
            base_url=config.base_url or None,
            timeout=config.timeout_seconds,
            max_retries=0,
        )

    def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        with translated_errors(_translate):
            message = self._client.messages.create(
                model=self.model,
                max_tokens=request.max_tokens,
                system=request.system,
                messages=[{"role": "user", "content": request.user}],
                output_config={
                    "format": {"type": "json_schema", "schema": anthropic.transform_schema(request.schema)}
                },
            )
        text = "".join(block.text for block in message.content if block.type == "text")
        return response_from(
            text,
            tokens_in=message.usage.input_tokens,
            tokens_out=message.usage.output_tokens,
            started=started,
            raw=message.model_dump(mode="json"),
        )


def _vendor_message(error: anthropic.APIStatusError) -> str:
    """The message of Anthropic's error body, without the SDK's "Error code: ..." prefix."""
    body = error.body if isinstance(error.body, dict) else {}
    details = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(details.get("message") or error.message)


_translate = sdk_error_translator(
    status_error_type=anthropic.APIStatusError,
    connection_error_type=anthropic.APIConnectionError,
    base_error_type=anthropic.AnthropicError,
    vendor_message=_vendor_message,
)
