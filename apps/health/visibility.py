"""What of the health document a caller who is not staff may see: statuses, timings and counts.

The document is public (monitors poll it without credentials), but what explains a failure can name
hosts, accounts, strategies, amounts or payloads. So only staff see error messages (a component's
message while it is not healthy, a probe's or an LLM call's error, the recent errors' texts) and
who trades what (accounts, strategies and their results); everyone else sees the same keys with
those reduced to a status phrase or a count. Fields are allowed by name: a new one stays hidden
until it is added here.
"""

from __future__ import annotations

from typing import Any

from apps.health.checks import HEALTHY

# Component fields shown to everyone as they are: statuses, times, counts, and market series.
_PUBLIC_FIELDS = frozenset(
    {
        "status",
        "response_time_ms",
        "checked_at",
        "last_run_at",
        "age_seconds",
        "series",
        "last_snapshot",
        "models",
        "waiting",
        "last_cycle",
        "acted",
        "orders_placed",
        "orders_refused",
        "swept_at",
        "kinds",
    }
)
_SERVICE_FIELDS = frozenset({"status", "response_time_ms", "status_code", "checked_at"})
_LAST_CALL_FIELDS = frozenset({"status", "latency_ms", "at"})


def public_document(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` as a caller who is not staff sees it."""
    components = {
        name: _public_component(component) for name, component in document.get("components", {}).items()
    }
    errors = [
        {key: value for key, value in entry.items() if key != "message"}
        for entry in document.get("recent_errors", [])
    ]
    return {**document, "components": components, "recent_errors": errors}


def _public_component(component: dict[str, Any]) -> dict[str, Any]:
    public = {key: value for key, value in component.items() if key in _PUBLIC_FIELDS}
    if "message" in component:
        healthy = component["status"] == HEALTHY
        public["message"] = (
            component["message"] if healthy else f"{component['status']}: the reason is shown to staff"
        )
    for key in ("strategies", "halted_accounts"):  # who trades what: a count for everyone else
        if key in component:
            value = component[key]
            public[key] = len(value) if isinstance(value, list) else value
    if "services" in component:
        public["services"] = {
            name: {key: value for key, value in service.items() if key in _SERVICE_FIELDS}
            for name, service in component["services"].items()
        }
    if "providers" in component:
        public["providers"] = [_public_provider(provider) for provider in component["providers"]]
    return public


def _public_provider(provider: dict[str, Any]) -> dict[str, Any]:
    last_call = provider.get("last_call")
    if last_call is None:
        return provider
    return {
        **provider,
        "last_call": {key: value for key, value in last_call.items() if key in _LAST_CALL_FIELDS},
    }
