"""Component checks of the health document; each measures something real and never raises."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import redis
from celery import Celery
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from redis.backoff import NoBackoff
from redis.retry import Retry

from apps.core.logging import redact
from apps.core.models import JobStatus
from apps.core.sweeper import job_sweep_last
from apps.health.models import ExternalApiProbe, HealthSnapshot, SnapshotTrigger
from apps.llm import selectors as llm_selectors
from apps.market import selectors as market_selectors
from apps.market.domain.candles import parse_timeframe
from apps.trading import selectors as trading_selectors
from apps.trading.orchestrator import Skip
from apps.trading.services.lifecycle import ALLOCATE
from apps.trading.services.lifecycle import waiting as lifecycle_waiting
from apps.training import selectors as training_selectors

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
Component = dict[str, Any]
WORKER_PING_CACHE_KEY = "health:workers-ping"
EXTERNAL_PROBE_MAX_AGE = timedelta(minutes=15)
# The orchestrator and the portfolio snapshots run every few minutes; older than this, something is stuck.
TRADING_MAX_AGE = timedelta(minutes=15)
# A broker that takes longer than this to connect or answer a ping is reported down.
BROKER_TIMEOUT_SECONDS = 1.0


def _failure(status: str, error: Exception, started: float) -> Component:
    return {
        "status": status,
        "response_time_ms": _elapsed_ms(started),
        "message": redact(f"{type(error).__name__}: {error}")[:300],
    }


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def check_database() -> Component:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any driver error means the database is unusable
        return _failure(UNHEALTHY, error, started)
    return {
        "status": HEALTHY,
        "response_time_ms": _elapsed_ms(started),
        "message": f"Database connection successful ({connection.vendor})",
    }


def check_cache() -> Component:
    started = time.perf_counter()
    key, value = "health:cache-probe", uuid.uuid4().hex
    try:
        cache.set(key, value, timeout=10)
        if cache.get(key) != value:
            return {
                "status": DEGRADED,
                "response_time_ms": _elapsed_ms(started),
                # A Redis cache that is down fails open (a miss, logged), so this is how it shows.
                "message": "The cache did not return the value just written: unreachable or evicting",
            }
    except Exception as error:  # the cache backend raises its client's own errors
        return _failure(DEGRADED, error, started)
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    return {"status": HEALTHY, "response_time_ms": _elapsed_ms(started), "message": f"{backend} answered"}


@lru_cache(maxsize=8)
def _redis_client(url: str, pid: int) -> redis.Redis:
    """One client per broker URL and process (a forked child opens its own); its pool keeps the
    connection, so a check is one PING, not a new connection (redis-py's handshake costs ~10 ms)."""
    del pid  # part of the cache key only
    return redis.Redis.from_url(
        url,
        socket_timeout=BROKER_TIMEOUT_SECONDS,
        socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
        # One retry on a fresh connection (a pooled one dies with a Redis restart), never a backoff.
        retry=Retry(NoBackoff(), 1),
    )


def check_broker(celery_app: Celery) -> Component:
    """A Redis broker answers a PING within the timeout; another transport (the embedded filesystem
    broker) must accept a connection."""
    started = time.perf_counter()
    url = celery_app.conf.broker_url
    try:
        if url.startswith(("redis://", "rediss://")):
            _redis_client(url, os.getpid()).ping()
            transport = "redis"
        else:
            with celery_app.connection_for_write() as conn:
                conn.ensure_connection(
                    max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS
                )
                transport = conn.transport_cls
    except Exception as error:  # redis-py and kombu raise transport-specific errors
        return _failure(UNHEALTHY, error, started)
    return {
        "status": HEALTHY,
        "response_time_ms": _elapsed_ms(started),
        "message": f"Broker ({transport}) reachable",
    }


def check_workers(celery_app: Celery, current_worker: str | None = None) -> Component:
    """Ping the workers; the answer is cached briefly so the endpoint rarely waits on a ping.

    Inside a worker (``current_worker``) the answer is known: a solo worker busy with this very
    check could not answer its own ping.
    """
    if current_worker:
        return {"status": HEALTHY, "response_time_ms": 0.0, "message": f"Checked by worker {current_worker}"}
    cached = cache.get(WORKER_PING_CACHE_KEY)
    if cached is not None:
        return cached
    started = time.perf_counter()
    try:
        replies = celery_app.control.ping(timeout=settings.HEALTH_WORKER_PING_TIMEOUT_SECONDS, limit=1)
    except Exception as error:  # a broker failure is reported by the broker component too
        return _failure(UNHEALTHY, error, started)
    names = sorted(name for reply in replies for name in reply)
    component = (
        {
            "status": HEALTHY,
            "response_time_ms": _elapsed_ms(started),
            "message": f"Worker answered: {names[0]}",
        }
        if names
        else {
            "status": UNHEALTHY,
            "response_time_ms": _elapsed_ms(started),
            "message": f"No worker answered a ping within {settings.HEALTH_WORKER_PING_TIMEOUT_SECONDS:g}s",
        }
    )
    cache.set(WORKER_PING_CACHE_KEY, component, timeout=settings.HEALTH_WORKER_PING_CACHE_SECONDS)
    return component


def check_scheduler() -> Component:
    """The age of the newest beat-driven snapshot: beat fired it and a worker ran it."""
    last = (
        HealthSnapshot.objects.filter(trigger=SnapshotTrigger.BEAT, status=JobStatus.COMPLETED)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    return scheduler_component(last, now=timezone.now())


def scheduler_component(last: datetime | None, *, now: datetime) -> Component:
    """The scheduler's health from when the newest beat-driven snapshot finished (None: never)."""
    if last is None:
        return {"status": UNHEALTHY, "last_run_at": None, "message": "No scheduled run has completed yet"}
    age = (now - last).total_seconds()
    fresh = age <= settings.HEALTH_SCHEDULER_MAX_AGE_SECONDS
    return {
        "status": HEALTHY if fresh else UNHEALTHY,
        "last_run_at": last.isoformat(),
        "age_seconds": round(age, 1),
        "message": "Scheduler operational" if fresh else f"Last scheduled run was {age:.0f}s ago",
    }


def check_external_apis() -> Component:
    probes = list(ExternalApiProbe.objects.all())
    if not probes:
        return {"status": DEGRADED, "message": "External APIs not probed yet", "services": {}}
    stale_before = timezone.now() - EXTERNAL_PROBE_MAX_AGE
    services = {
        probe.name: {
            "status": HEALTHY if probe.reachable and probe.checked_at >= stale_before else UNHEALTHY,
            "response_time_ms": probe.response_time_ms,
            "status_code": probe.status_code,
            "checked_at": probe.checked_at.isoformat(),
            "message": probe.message,
        }
        for probe in probes
    }
    down = sorted(name for name, service in services.items() if service["status"] != HEALTHY)
    return {
        "status": DEGRADED if down else HEALTHY,
        "message": f"Unreachable or stale: {', '.join(down)}" if down else "External APIs operational",
        "services": services,
    }


def check_market_data() -> Component:
    """Each active series is fresh when its newest candle is at most two candles old."""
    now = timezone.now()
    series = {}
    for row in market_selectors.newest_candles_by_series():
        duration = parse_timeframe(row["timeframe"]).duration.to_pytimedelta()
        # The newest final candle opened one timeframe before the forming one; allow one more.
        fresh = now - row["newest"] <= 2 * duration + timedelta(minutes=5)
        series[f"{row['symbol']}@{row['exchange']} {row['timeframe']}"] = {
            "status": HEALTHY if fresh else DEGRADED,
            "newest_candle": row["newest"].isoformat(),
            "age_seconds": round((now - row["newest"]).total_seconds()),
        }
    if not series:
        return {"status": DEGRADED, "message": "No candles stored for any active instrument", "series": {}}
    stale = sorted(name for name, item in series.items() if item["status"] != HEALTHY)
    return {
        "status": DEGRADED if stale else HEALTHY,
        "message": f"Stale: {', '.join(stale)}" if stale else "Market data service operational",
        "series": series,
    }


def check_performance_monitor(*, now: datetime | None = None) -> Component:
    """Live trading results beside their backtests, and champion models' accuracy on unseen bars."""
    now = now or timezone.now()
    newest = trading_selectors.snapshot_newest_time()
    halted = trading_selectors.halted_account_names()
    strategies = [
        {
            "strategy_id": result.allocation.strategy.strategy_id,
            "account": result.allocation.account.name,
            "total_pnl": str(result.latest.total_pnl),
            "return_pct": float(result.latest.return_pct),
            "drawdown_pct": float(result.latest.drawdown_pct),
            "backtest_return_pct": None
            if result.backtest_return_pct is None
            else float(result.backtest_return_pct),
        }
        for result in trading_selectors.allocation_results_latest()
    ]
    if trading_selectors.account_list_all().exists() and (newest is None or now - newest > TRADING_MAX_AGE):
        status, message = DEGRADED, "No recent portfolio snapshot"
    elif halted:
        status, message = DEGRADED, f"Trading halted on: {', '.join(halted)}"
    else:
        status, message = HEALTHY, "Performance monitor operational"
    champions = training_selectors.champion_live_accuracy()
    measured = [c for c in champions if c.get("accuracy") is not None]
    if champions:
        accuracy = ", ".join(f"{c['model_id']}: {c['accuracy']:.3f}" for c in measured) or "no outcomes yet"
        message += f"; live accuracy of champion models: {accuracy}"
    return {
        "status": status,
        "message": message,
        "last_snapshot": newest.isoformat() if newest else None,
        "halted_accounts": halted,
        "strategies": strategies,
        "models": champions,
    }


def check_trading_orchestrator(*, now: datetime | None = None) -> Component:
    """The orchestrator's last cycle: when, and how many orders it placed and how many were refused."""
    now = now or timezone.now()
    trading = trading_selectors.allocations_to_trade_count()
    last = trading_selectors.orchestrator_cycle_last()
    steps = lifecycle_waiting(accounts=trading_selectors.auto_trading_accounts())
    # Counts only: the health document is public; the steps themselves are in the account API.
    allocate = sum(step.action == ALLOCATE for step in steps)
    waiting = {"allocate": allocate, "wind_down": len(steps) - allocate}
    if last is None:
        return {
            "status": HEALTHY if trading == 0 else DEGRADED,
            "message": f"No cycle yet; {trading} strategies to trade" + _waiting_message(waiting),
            "strategies": trading,
            "waiting": waiting,
        }
    moment = last.finished_at or last.created_at
    if last.status == JobStatus.FAILED:
        status, message = UNHEALTHY, f"The last cycle failed: {last.error[:200]}"
    elif trading and now - moment > TRADING_MAX_AGE:
        status, message = DEGRADED, f"No cycle since {moment:%Y-%m-%d %H:%M} UTC"
    elif blocked := [entry for entry in last.summary if entry.get("code") in Skip.BLOCKING]:
        reasons = "; ".join(f"{entry['strategy_id']}: {entry['reason']}" for entry in blocked[:5])
        status, message = DEGRADED, f"{len(blocked)} enabled allocation(s) cannot act: {reasons}"
    else:
        status, message = HEALTHY, "Trading orchestrator operational"
    return {
        "status": status,
        "message": message + _waiting_message(waiting),
        "strategies": trading,
        "waiting": waiting,
        "last_cycle": moment.isoformat(),
        "acted": last.acted,
        "orders_placed": last.orders_placed,
        "orders_refused": last.orders_refused,
    }


def _waiting_message(waiting: dict[str, int]) -> str:
    """What accounts trading without the lifecycle policy wait for an operator to do."""
    if not any(waiting.values()):
        return ""
    return (
        f"; waiting for an operator (lifecycle policy off): {waiting['allocate']} active strategies to "
        f"allocate, {waiting['wind_down']} retired ones to wind down"
    )


def check_jobs() -> Component:
    """Job rows stuck (PENDING past the resend threshold, RUNNING past their lease) or failed in the
    last 24 hours, per kind, as the job sweeper's newest pass found them (it also re-sent them)."""
    sweep = job_sweep_last()
    if sweep is None:
        return {"status": DEGRADED, "message": "The job sweeper has not run yet", "kinds": {}}
    age = (timezone.now() - sweep.ran_at).total_seconds()
    kinds = sweep.report.get("kinds", {})
    stuck = {
        label: facts for label, facts in kinds.items() if facts["pending_stuck"] or facts["running_expired"]
    }
    problems = [
        f"{label}: {facts['pending_stuck']} pending too long, {facts['running_expired']} past their lease"
        for label, facts in stuck.items()
    ]
    if age > 3 * settings.JOB_SWEEP_INTERVAL_SECONDS + 30:
        problems.insert(0, f"the job sweeper last ran {age:.0f}s ago")
    if sweep.report.get("broker_error"):
        problems.append(f"re-sending postponed, the broker is unavailable: {sweep.report['broker_error']}")
    failed = sum(facts["failed_24h"] for facts in kinds.values())
    return {
        "status": DEGRADED if problems else HEALTHY,
        "message": "; ".join(problems) if problems else f"No stuck jobs; {failed} failed in the last 24 h",
        "swept_at": sweep.ran_at.isoformat(),
        "kinds": kinds,
    }


LLM_FAILED_CALL = frozenset({"error", "budget_exceeded"})


def check_llm_services() -> Component:
    """Configured LLM providers, the outcome and latency of their last call, and the budget left."""
    providers = llm_selectors.provider_status()
    real = [p for p in providers if p["name"] != "offline" and p["configured"]]
    failing = [p["name"] for p in real if (p["last_call"] or {}).get("status") in LLM_FAILED_CALL]
    if not real:
        status, message = DEGRADED, "No LLM provider configured: strategy ideas come from offline templates"
    elif failing:
        status, message = DEGRADED, f"Last call failed: {', '.join(failing)}"
    else:
        status, message = HEALTHY, f"LLM services operational: {', '.join(p['name'] for p in real)}"
    return {"status": status, "message": message, "providers": providers}


# Components whose failure makes the whole system unhealthy (HTTP 503): without them nothing works.
CRITICAL_COMPONENTS = frozenset({"database", "broker"})
# Checked on every request: cheap, and what a load balancer must know now.
LIVE_COMPONENTS = ("database", "cache", "broker")
# Computed by the snapshot job off the request path and read back from the newest snapshot.
STORED_COMPONENTS = (
    "workers",
    "scheduler",
    "external_apis",
    "market_data",
    "llm_services",
    "performance_monitor",
    "trading_orchestrator",
    "jobs",
)


def component_checks(celery_app: Celery, current_worker: str | None) -> dict[str, Callable[[], Component]]:
    return {
        "database": check_database,
        "cache": check_cache,
        "broker": lambda: check_broker(celery_app),
        "workers": lambda: check_workers(celery_app, current_worker),
        "scheduler": check_scheduler,
        "external_apis": check_external_apis,
        "market_data": check_market_data,
        "llm_services": check_llm_services,
        "performance_monitor": check_performance_monitor,
        "trading_orchestrator": check_trading_orchestrator,
        "jobs": check_jobs,
    }


def run_checks(
    celery_app: Celery, current_worker: str | None = None, *, only: tuple[str, ...] | None = None
) -> dict[str, Component]:
    """Run the checks (``only`` those named, in the order of ``component_checks``); each component
    carries ``checked_at``, the time its check ran."""
    components = {}
    for name, check in component_checks(celery_app, current_worker).items():
        if only is not None and name not in only:
            continue
        checked_at = timezone.now().isoformat()
        try:
            component = check()
        except Exception as error:  # a check that needs the database fails when the database is down
            component = _failure(UNHEALTHY, error, time.perf_counter())
        components[name] = {**component, "checked_at": checked_at}
    return components


def overall_status(components: dict[str, Component]) -> str:
    """Unhealthy when a critical component fails, degraded when any other does."""
    if any(components[name]["status"] != HEALTHY for name in CRITICAL_COMPONENTS if name in components):
        return UNHEALTHY
    if any(component["status"] != HEALTHY for component in components.values()):
        return DEGRADED
    return HEALTHY
