"""Reads: provider configuration from the settings, the daily budget left, provider status, the call log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import F, QuerySet, Sum
from django.utils import timezone

from apps.llm.models import OFFLINE, LLMCall, LLMCallStatus
from apps.llm.providers import PROVIDER_NAMES, ProviderConfig

# provider -> settings naming its API key, model, base URL and timeout
_PROVIDER_SETTINGS = {
    "openai": ("OPENAI_API_KEY", "LLM_OPENAI_MODEL", "OPENAI_BASE_URL", "LLM_OPENAI_TIMEOUT_SECONDS"),
    "anthropic": (
        "ANTHROPIC_API_KEY", "LLM_ANTHROPIC_MODEL", "ANTHROPIC_BASE_URL", "LLM_ANTHROPIC_TIMEOUT_SECONDS",
    ),
    "gemini": ("GEMINI_API_KEY", "LLM_GEMINI_MODEL", "GEMINI_BASE_URL", "LLM_GEMINI_TIMEOUT_SECONDS"),
}  # fmt: skip


@dataclass(frozen=True)
class DailyBudget:
    """Today's (UTC) LLM use against LLM_DAILY_TOKEN_BUDGET and LLM_DAILY_COST_BUDGET_USD."""

    tokens_used: int
    usd_used: Decimal
    token_limit: int
    usd_limit: Decimal

    @property
    def tokens_left(self) -> int:
        return self.token_limit - self.tokens_used

    @property
    def usd_left(self) -> Decimal:
        return self.usd_limit - self.usd_used

    @property
    def spent(self) -> bool:
        return self.tokens_left <= 0 or self.usd_left <= 0


def provider_config(name: str) -> ProviderConfig | None:
    """How to reach provider ``name`` per the settings, or None when it has no API key."""
    key_setting, model_setting, url_setting, timeout_setting = _PROVIDER_SETTINGS[name]
    api_key = getattr(settings, key_setting)
    if not api_key:
        return None
    return ProviderConfig(
        name=name,
        model=getattr(settings, model_setting),
        api_key=api_key,
        base_url=getattr(settings, url_setting) or None,
        timeout_seconds=getattr(settings, timeout_setting),
    )


def api_keys() -> list[str]:
    """The configured API key values, so that writers can keep them out of anything stored."""
    return [getattr(settings, key) for key, *_ in _PROVIDER_SETTINGS.values() if getattr(settings, key)]


def _utc_day_start(day: date | None = None) -> datetime:
    return datetime.combine(day or timezone.now().date(), time.min, tzinfo=UTC)


def budget_today() -> DailyBudget:
    """Tokens and estimated cost of every call since 00:00 UTC, with the daily limits."""
    used = LLMCall.objects.filter(created_at__gte=_utc_day_start()).aggregate(
        tokens=Sum(F("tokens_in") + F("tokens_out")), usd=Sum("cost_usd")
    )
    return DailyBudget(
        tokens_used=used["tokens"] or 0,
        usd_used=used["usd"] or Decimal(0),
        token_limit=settings.LLM_DAILY_TOKEN_BUDGET,
        usd_limit=Decimal(str(settings.LLM_DAILY_COST_BUDGET_USD)),
    )


def provider_status() -> list[dict[str, Any]]:
    """For the health document's ``llm_services``: each provider, in the configured order first.

    ``configured`` is true for a provider in LLM_PROVIDERS with an API key (``offline`` always is).
    ``last_call`` is the newest call that was not answered from the cache (a cached answer says
    nothing about the provider). ``budget_left_today`` is shared by all LLM providers; ``offline``
    is no LLM and has none.
    """
    budget = budget_today()
    budget_document = {"tokens": budget.tokens_left, "usd": float(budget.usd_left)}
    ordered = [
        *settings.LLM_PROVIDERS,
        *(n for n in (*PROVIDER_NAMES, OFFLINE) if n not in settings.LLM_PROVIDERS),
    ]
    statuses = []
    for name in ordered:
        is_offline = name == OFFLINE
        config = None if is_offline else provider_config(name)
        last = LLMCall.objects.filter(provider=name).exclude(status=LLMCallStatus.CACHED).first()
        statuses.append(
            {
                "name": name,
                "configured": name in settings.LLM_PROVIDERS and (is_offline or config is not None),
                "model": OFFLINE if is_offline else getattr(settings, _PROVIDER_SETTINGS[name][1]),
                "last_call": None
                if last is None
                else {
                    "status": last.status,
                    "latency_ms": last.latency_ms,
                    "at": last.created_at.isoformat(),
                    "error": last.error[:300],
                },
                "budget_left_today": None if is_offline else budget_document,
            }
        )
    return statuses


def call_list(
    *,
    provider: str | None = None,
    status: str | None = None,
    purpose: str | None = None,
    day: date | None = None,
) -> QuerySet[LLMCall]:
    """Recorded calls, newest first, optionally narrowed to a provider, status, purpose or UTC day."""
    calls = LLMCall.objects.all()
    if provider:
        calls = calls.filter(provider=provider)
    if status:
        calls = calls.filter(status=status)
    if purpose:
        calls = calls.filter(purpose=purpose)
    if day:
        start = _utc_day_start(day)
        calls = calls.filter(created_at__gte=start, created_at__lt=start + timedelta(days=1))
    return calls


def call_totals(calls: QuerySet[LLMCall]) -> dict[str, Any]:
    """Count, tokens and estimated cost of ``calls``."""
    totals = calls.aggregate(
        tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"), cost_usd=Sum("cost_usd")
    )
    return {
        "calls": calls.count(),
        "tokens_in": totals["tokens_in"] or 0,
        "tokens_out": totals["tokens_out"] or 0,
        "cost_usd": totals["cost_usd"] or Decimal(0),
    }
