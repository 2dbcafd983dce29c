"""Secrets never reach logs; tasks route to their queue and get that queue's time limits."""

from __future__ import annotations

import json
import logging

from apps.core.logging import JsonFormatter, RedactSecretsFilter, redact
from workers.celery import QueueTimeLimits, queue_for


def test_configured_secret_values_are_masked(monkeypatch):
    monkeypatch.setenv("BINANCE_SECRET_KEY", "s3cr3t-binance-value")
    assert redact("signing with s3cr3t-binance-value failed") == "signing with [REDACTED] failed"


def test_credential_pairs_are_masked_even_when_not_configured():
    assert redact("api_key=abc123456789 user=bob") == "api_key=[REDACTED] user=bob"
    assert redact('{"password": "hunter2hunter2"}') == '{"password": "[REDACTED]"}'


def test_the_filter_rewrites_formatted_messages(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-0123456789")
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "key %s rejected", ("sk-live-0123456789",), None
    )
    RedactSecretsFilter().filter(record)
    assert record.getMessage() == "key [REDACTED] rejected"


def test_json_lines_carry_the_request_id():
    record = logging.LogRecord("apps.x", logging.INFO, __file__, 1, "hello", (), None)
    record.request_id = "abc"
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["message"], entry["request_id"], entry["level"]) == ("hello", "abc", "INFO")


def test_tasks_route_by_name_to_their_queue():
    assert queue_for("strategies.backtest_run") == "backtests"
    assert queue_for("strategies.generate_run") == "llm"
    assert queue_for("strategies.daily_update") == "backtests"
    assert queue_for("market.analysis_run_all") == "default"
    assert queue_for("training.train_model") == "training"
    assert queue_for("trading.order_submit") == "orders"
    assert queue_for("health.snapshot_take") == "default"
    assert queue_for("strategies.daily_update_strategy") == "backtests"
    assert queue_for("strategies.ml_series_prepare") == "training"  # fits xgboost models
    assert queue_for("core.jobs_sweep") == "default"


def test_each_task_gets_the_time_limits_of_its_queue(settings):
    class Task:
        name = "training.train_model"

    soft, hard = settings.CELERY_QUEUE_TIME_LIMITS["training"]
    assert QueueTimeLimits().annotate(Task()) == {"soft_time_limit": soft, "time_limit": hard}


def test_the_redis_visibility_timeout_outlasts_every_task(settings):
    longest = max(hard for _, hard in settings.CELERY_QUEUE_TIME_LIMITS.values())
    if settings.CELERY_BROKER_URL.startswith("redis"):
        assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > longest
    else:
        assert longest < 2 * 3600
