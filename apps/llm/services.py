"""Writes: asking LLM providers for JSON the caller validates, with retries, one repair, fallbacks,
a daily budget reserved atomically across workers, a cache and a recorded row for every call.

The one entry point is ``llm_complete_json``. Callers (strategy generation, market commentary)
pass everything in: the context as data, the schema, a validator and, where it makes sense, an
offline fallback. An answer is only ever parsed as JSON and handed to the validator: nothing in
it is evaluated or executed here.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.core.logging import redact
from apps.core.retry import retry_temporary
from apps.llm import prompts, selectors
from apps.llm.errors import LLMError, LLMTemporaryError, LLMUnavailableError
from apps.llm.models import ACCEPTED_STATUSES, OFFLINE, LLMCall, LLMCallStatus
from apps.llm.providers import PROVIDER_NAMES, LLMProvider, LLMRequest, LLMResponse, build_provider

logger = logging.getLogger(__name__)

Validator = Callable[[dict[str, Any]], None]
OfflineFallback = Callable[[dict[str, Any]], dict[str, Any]]
_MICRO_DOLLAR = Decimal("0.000001")
_MAX_ERROR_CHARS = 4000
# A conservative prompt size before the provider counts it: English and JSON run 3-4 characters a token.
_CHARS_PER_TOKEN = 3
# Serialises budget reservations on PostgreSQL (SQLite's IMMEDIATE transactions already do).
_BUDGET_LOCK = 0x4C4C4D_425544  # "LLM", "BUD"


@dataclass(frozen=True)
class LLMResult:
    """A validated answer and where it came from.

    ``status`` is that of the accepted call: ``ok``, ``repaired`` or ``cached`` (an offline answer
    is ``ok`` with ``provider == "offline"``). ``call_id`` is the row whose answer this is;
    ``call_ids`` every row this request wrote, in order; ``failures`` why earlier providers in the
    order were passed over, one line each.
    """

    data: dict[str, Any]
    provider: str
    model: str
    status: str
    call_id: int
    call_ids: tuple[int, ...]
    failures: tuple[str, ...]

    @property
    def is_offline(self) -> bool:
        return self.provider == OFFLINE


class _Unanswered(Exception):
    """A provider gave no answer to judge (an error, the budget, the deadline): try the next one."""


def llm_complete_json(
    *,
    purpose: str,
    template: str,
    template_version: str,
    system: str,
    context: dict[str, Any],
    instructions: str,
    schema: dict[str, Any],
    validate: Validator,
    provider: str | None = None,
    offline_fallback: OfflineFallback | None = None,
) -> LLMResult:
    """Ask the providers of LLM_PROVIDERS in order (or only ``provider``) for a JSON object.

    ``context`` is data: it is sent delimited from ``instructions`` (``prompts.user_message``).
    ``schema`` is sent as the vendor's native structured output (see ``LLMRequest`` for the subset
    to keep to). ``validate`` gets every parsed answer and raises ``ValueError`` with a message
    when it is not acceptable; it is the caller's strict check and the last word.

    For each provider: a cached accepted answer to the same input less than LLM_CACHE_SECONDS old
    is reused (status ``cached``, no request, no cost); otherwise, while the daily budget lasts, the
    provider is asked, temporary errors (timeouts, 429, 5xx) retried up to LLM_MAX_RETRIES times
    with backoff. An answer that does not parse or validate gets one repair request quoting the
    problem. Any other failure moves on to the next provider. ``offline`` (last by default) calls
    ``offline_fallback(context)`` instead of an LLM, and its result is validated too.

    Side effects: HTTP requests to the providers, sleeps between retries, and one ``LLMCall`` row
    per request, refusal, cached answer or offline answer. Raises ``LLMUnavailableError`` (with
    each provider's reason) when no provider produced a valid answer, and ``ValueError`` for an
    unknown ``provider``.
    """
    run = _Run(
        purpose=purpose,
        template=template,
        template_version=template_version,
        input_hash=prompts.input_sha256(
            system=system, context=context, instructions=instructions, schema=schema
        ),
        validate=validate,
    )
    request = LLMRequest(
        system=system,
        user=prompts.user_message(instructions=instructions, context=context, schema=schema),
        schema=schema,
        temperature=settings.LLM_TEMPERATURE,
        max_tokens=settings.LLM_MAX_TOKENS,
    )
    for name in _provider_order(provider):
        result = (
            _ask_offline(run, context, offline_fallback) if name == OFFLINE else _ask_llm(run, name, request)
        )
        if result is not None:
            if run.failures:
                logger.info("LLM %s answered by %s after: %s", purpose, name, "; ".join(run.failures))
            return result
    raise LLMUnavailableError(run.failures)


def call_cost_usd(*, model: str, tokens_in: int, tokens_out: int) -> Decimal:
    """Estimated cost from LLM_PRICE_TABLE (USD per million input and output tokens); 0 if unpriced."""
    prices = settings.LLM_PRICE_TABLE.get(model)
    if prices is None:
        _warn_unpriced(model)
        return Decimal(0)
    cost = Decimal(str(prices["input"])) * tokens_in + Decimal(str(prices["output"])) * tokens_out
    return (cost / 1_000_000).quantize(_MICRO_DOLLAR)


@cache
def _warn_unpriced(model: str) -> None:
    logger.warning("No price for LLM model %s in LLM_PRICE_TABLE: its calls count as free", model)


def _provider_order(provider: str | None) -> list[str]:
    if provider is None:
        return list(settings.LLM_PROVIDERS)
    if provider not in (*PROVIDER_NAMES, OFFLINE):
        raise ValueError(f"Unknown LLM provider {provider!r}; known: {', '.join((*PROVIDER_NAMES, OFFLINE))}")
    return [provider]


class _Run:
    """One ``llm_complete_json`` call: what it asks, the rows it wrote, its failures, its deadline."""

    def __init__(
        self, *, purpose: str, template: str, template_version: str, input_hash: str, validate: Validator
    ) -> None:
        self.purpose, self.template, self.template_version = purpose, template, template_version
        self.input_hash = input_hash
        self.validate = validate
        self.invocation = uuid.uuid4()
        self.deadline = time.monotonic() + settings.LLM_DEADLINE_SECONDS
        self.call_ids: list[int] = []
        self.failures: list[str] = []
        self.reservation: int | None = None  # the in-flight request's budget reservation row
        self._secrets = selectors.api_keys()

    def without_keys(self, text: str) -> str:
        """``text`` with every configured API key masked."""
        for secret in self._secrets:
            text = text.replace(secret, "[REDACTED]")
        return text

    def scrub(self, text: str) -> str:
        """An error message without API keys or anything shaped like a credential (``key=...``)."""
        return redact(self.without_keys(text))

    def fail(self, provider: str, reason: str) -> None:
        self.failures.append(f"{provider}: {self.scrub(reason)}")

    def record(
        self,
        *,
        provider: str,
        model: str,
        status: str,
        response: LLMResponse | None = None,
        answer: str = "",
        error: str = "",
        latency_ms: float | None = None,
    ) -> LLMCall:
        tokens_in, tokens_out = (response.tokens_in, response.tokens_out) if response else (0, 0)
        with transaction.atomic():
            call = self._create(
                provider, model, status, tokens_in, tokens_out, response, answer, error, latency_ms
            )
            if self.reservation is not None:  # the request's outcome replaces what it held
                LLMCall.objects.filter(pk=self.reservation).delete()
                self.reservation = None
        self.call_ids.append(call.pk)
        return call

    def reserve(self, *, provider: str, model: str, tokens_in: int, tokens_out: int) -> LLMCall:
        """Hold a request's largest cost in today's budget until :meth:`record` writes its outcome."""
        call = self._create(
            provider, model, LLMCallStatus.RESERVED, tokens_in, tokens_out, None, "", "", None
        )
        self.reservation = call.pk
        return call

    def _create(
        self,
        provider: str,
        model: str,
        status: str,
        tokens_in: int,
        tokens_out: int,
        response: LLMResponse | None,
        answer: str,
        error: str,
        latency_ms: float | None,
    ) -> LLMCall:
        return LLMCall.objects.create(
            invocation=self.invocation,
            provider=provider,
            model=model,
            purpose=self.purpose,
            template=self.template,
            template_version=self.template_version,
            input_sha256=self.input_hash,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=call_cost_usd(model=model, tokens_in=tokens_in, tokens_out=tokens_out),
            latency_ms=response.latency_ms if response else latency_ms,
            status=status,
            error=self.scrub(error)[:_MAX_ERROR_CHARS],
            # Only exact keys are masked in answers: credential-shaped text there is the model's data.
            answer=self.without_keys(response.text if response else answer),
        )

    def result(self, call: LLMCall, data: dict[str, Any]) -> LLMResult:
        return LLMResult(
            data=data,
            provider=call.provider,
            model=call.model,
            status=call.status,
            call_id=call.pk,
            call_ids=tuple(self.call_ids),
            failures=tuple(self.failures),
        )


def _read(text: str, parsed: dict[str, Any] | None, validate: Validator) -> tuple[dict[str, Any] | None, str]:
    """``(data, "")`` when the answer parses and validates, else ``(None, why not)``."""
    try:
        data = parsed if parsed is not None else prompts.parse_json_answer(text)
        validate(data)
    except ValueError as error:
        return None, str(error) or type(error).__name__
    return data, ""


def _ask_llm(run: _Run, name: str, request: LLMRequest) -> LLMResult | None:
    """The provider's valid answer (cached, first or repaired), or None with the reason in ``run``."""
    config = selectors.provider_config(name)
    if config is None:
        run.fail(name, "no API key configured")
        return None
    cached = _from_cache(run, name, config.model)
    if cached is not None:
        return cached
    provider = build_provider(config)
    try:
        response = _complete(run, provider, request)
        data, problem = _read(response.text, response.parsed, run.validate)
        if data is not None:
            return run.result(_record_answer(run, provider, response, LLMCallStatus.OK), data)
        _record_answer(run, provider, response, LLMCallStatus.INVALID_OUTPUT, problem)
        repair = replace(
            request, user=prompts.repair_message(user=request.user, answer=response.text, error=problem)
        )
        response = _complete(run, provider, repair)
        data, problem = _read(response.text, response.parsed, run.validate)
        if data is not None:
            return run.result(_record_answer(run, provider, response, LLMCallStatus.REPAIRED), data)
        _record_answer(run, provider, response, LLMCallStatus.INVALID_OUTPUT, problem)
        run.fail(name, f"invalid output, also after one repair attempt: {problem}")
    except _Unanswered as reason:
        run.fail(name, str(reason))
    return None


def _record_answer(
    run: _Run, provider: LLMProvider, response: LLMResponse, status: str, problem: str = ""
) -> LLMCall:
    if problem:
        logger.warning(
            "LLM %s: %s/%s answered invalid output: %s", run.purpose, provider.name, provider.model, problem
        )
    return run.record(
        provider=provider.name, model=provider.model, status=status, response=response, error=problem
    )


def _from_cache(run: _Run, name: str, model: str) -> LLMResult | None:
    """A recent accepted answer to the same input by the same provider and model, if still valid."""
    if settings.LLM_CACHE_SECONDS <= 0:
        return None
    hit = (
        LLMCall.objects.filter(
            input_sha256=run.input_hash,
            provider=name,
            model=model,
            status__in=ACCEPTED_STATUSES,
            created_at__gte=timezone.now() - timedelta(seconds=settings.LLM_CACHE_SECONDS),
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if hit is None:
        return None
    data, problem = _read(hit.answer, None, run.validate)
    if data is None:  # the caller's rules changed since: ask again
        logger.info("LLM %s: cached answer %s no longer validates: %s", run.purpose, hit.pk, problem)
        return None
    call = run.record(
        provider=name, model=model, status=LLMCallStatus.CACHED, answer=hit.answer, latency_ms=0.0
    )
    return run.result(call, data)


def _complete(run: _Run, provider: LLMProvider, request: LLMRequest) -> LLMResponse:
    """One answer from ``provider``, retrying temporary errors; ``_Unanswered`` when there is none.
    Every failed request is recorded and logged."""
    attempts = settings.LLM_MAX_RETRIES + 1
    tries = 0

    def once() -> LLMResponse:
        nonlocal tries
        tries += 1
        if time.monotonic() > run.deadline:
            raise _Unanswered(f"not asked: LLM_DEADLINE_SECONDS ({settings.LLM_DEADLINE_SECONDS}s) passed")
        _reserve(run, provider, request)
        started = time.perf_counter()
        try:
            return provider.complete(request)
        except LLMError as error:
            message = run.scrub(str(error))
            latency_ms = round((time.perf_counter() - started) * 1000, 1)
            run.record(
                provider=provider.name, model=provider.model, status=LLMCallStatus.ERROR, error=message,
                latency_ms=latency_ms,
            )  # fmt: skip
            temporary = isinstance(error, LLMTemporaryError)
            logger.warning(
                "LLM %s: %s/%s attempt %d failed (%s): %s",
                run.purpose, provider.name, provider.model, tries,
                "temporary" if temporary else "permanent", message,
            )  # fmt: skip
            if not temporary:
                raise _Unanswered(message) from None
            raise

    try:
        return retry_temporary(
            once,
            temporary=LLMTemporaryError,
            attempts=attempts,
            backoff_seconds=settings.LLM_RETRY_BACKOFF_SECONDS,
            max_wait_seconds=settings.LLM_RETRY_MAX_WAIT_SECONDS,
            retry_after=lambda error: getattr(error, "retry_after", None),
            deadline=run.deadline,
        )
    except LLMTemporaryError as error:
        raise _Unanswered(f"{run.scrub(str(error))} (gave up after {tries} attempts)") from None


def _reserve(run: _Run, provider: LLMProvider, request: LLMRequest) -> None:
    """Reserve the request's largest cost (its prompt, conservatively counted, and ``max_tokens`` of
    answer) in today's budget, or refuse it with a recorded ``budget_exceeded`` row.

    The check and the reservation are one transaction that other workers' reservations wait for, so
    concurrent requests never spend more than the budget between them; the request's outcome then
    replaces the reservation with what it really used. A worker that dies mid-request leaves its
    reservation counted: the budget errs on the side of spending less.
    """
    tokens_in = -(-len(request.system + request.user) // _CHARS_PER_TOKEN)
    tokens_out = request.max_tokens
    cost = call_cost_usd(model=provider.model, tokens_in=tokens_in, tokens_out=tokens_out)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_BUDGET_LOCK])
        budget = selectors.budget_today()
        fits = tokens_in + tokens_out <= budget.tokens_left and cost <= budget.usd_left
        if fits:
            run.reserve(
                provider=provider.name, model=provider.model, tokens_in=tokens_in, tokens_out=tokens_out
            )
            return
    used = (
        f"{budget.tokens_used:,} of {budget.token_limit:,} tokens and ${budget.usd_used:.4f} of "
        f"${budget.usd_limit:.2f} used or reserved today"
    )
    if budget.spent:
        message = f"Daily LLM budget spent: {used}; no LLM calls until 00:00 UTC."
    else:
        message = (
            f"Daily LLM budget too low for this request: {used}; it may use up to "
            f"{tokens_in + tokens_out:,} tokens and ${cost:.4f}."
        )
    run.record(
        provider=provider.name, model=provider.model, status=LLMCallStatus.BUDGET_EXCEEDED, error=message
    )
    raise _Unanswered(message)


def _ask_offline(
    run: _Run, context: dict[str, Any], offline_fallback: OfflineFallback | None
) -> LLMResult | None:
    """The caller's rule-template answer (no LLM), validated like any other."""
    if offline_fallback is None:
        run.fail(OFFLINE, "no offline fallback for this purpose")
        return None
    started = time.perf_counter()
    try:
        data = offline_fallback(context)
        run.validate(data)
    except ValueError as error:
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        logger.error("LLM %s: the offline fallback produced an invalid answer: %s", run.purpose, error)
        run.record(
            provider=OFFLINE, model=OFFLINE, status=LLMCallStatus.INVALID_OUTPUT, error=str(error),
            latency_ms=latency_ms,
        )  # fmt: skip
        run.fail(OFFLINE, f"invalid output: {error}")
        return None
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    answer = json.dumps(data, sort_keys=True, default=str)
    call = run.record(
        provider=OFFLINE, model=OFFLINE, status=LLMCallStatus.OK, answer=answer, latency_ms=latency_ms
    )
    return run.result(call, data)
