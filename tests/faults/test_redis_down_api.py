"""With Redis down the API is degraded, not broken: reads and the kill switch answer from the database,
an accepted job waits in its row, health names what is down; when Redis returns, the job runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.contrib.auth import get_user_model
from knox.models import AuthToken

from apps.core.models import JobStatus
from apps.strategies.models import Backtest
from apps.trading.services.wallet import wallet_account_open
from tests.faults.conftest import report
from tests.faults.harness import FAST_RECOVERY, REPO_ROOT, database_url, free_port, wait_until

# Each waits for dozens of real jobs through a fault: minutes on a loaded machine, past the default 300 s.
pytestmark = [pytest.mark.fault, pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]


def _call(base: str, token: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.fixture
def web(stack):
    port = free_port()
    env = {
        **os.environ,
        **FAST_RECOVERY,
        "DATABASE_URL": database_url(),
        "REDIS_URL": stack.redis.url,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    log = (stack.directory / "web.log").open("w")
    command = [sys.executable, "-m", "gunicorn", "tradingsite.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "1", "--threads", "4", "--timeout", "60"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            urllib.request.urlopen(base + "/api/health", timeout=5)
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    wait_until(up, 60, "the web server")
    yield base
    process.kill()
    process.wait(timeout=10)
    log.close()


def test_with_redis_down_the_api_answers_from_the_database_and_runs_the_job_once_redis_is_back(
    stack, strategy, web
):
    staff = get_user_model().objects.create_user(username="operator", password="x" * 12, is_staff=True)
    _, token = AuthToken.objects.create(user=staff)
    account = wallet_account_open(user=staff, quote_currency="USDT")

    stack.redis.stop()
    started = time.monotonic()
    answers = {
        "GET /api/strategies": _call(web, token, "GET", "/api/strategies")[0],
        "GET /api/market/instruments": _call(web, token, "GET", "/api/market/instruments")[0],
        "GET /api/trading/portfolio": _call(web, token, "GET", "/api/trading/portfolio")[0],
        "POST halt": _call(web, token, "POST", f"/api/trading/accounts/{account.pk}/halt")[0],
        "POST resume": _call(web, token, "POST", f"/api/trading/accounts/{account.pk}/resume")[0],
    }
    status, accepted = _call(
        web,
        token,
        "POST",
        "/api/strategies/backtest",
        {"strategy_id": strategy.strategy_id, "start_date": "2019-01-01", "end_date": "2019-06-01"},
    )
    answers["POST /api/strategies/backtest"] = status
    health_status, health = _call(web, token, "GET", "/api/health")
    answers["GET /api/health"] = health_status
    seconds = time.monotonic() - started

    backtest = Backtest.objects.get(pk=accepted["id"])
    components = {name: health["components"][name]["status"] for name in ("database", "broker", "cache")}
    report("redis down: API", {"answers": answers, "components": components, "seconds_for_all": seconds})
    assert answers == {
        "GET /api/strategies": 200,
        "GET /api/market/instruments": 200,
        "GET /api/trading/portfolio": 200,
        "POST halt": 200,
        "POST resume": 200,
        "POST /api/strategies/backtest": 202,
        "GET /api/health": 503,
    }
    assert (backtest.status, backtest.dispatched_at) == (JobStatus.PENDING, None)
    assert components == {"database": "healthy", "broker": "unhealthy", "cache": "degraded"}

    stack.redis.start()
    stack.worker("worker", concurrency=1)
    stack.beat()
    waited = wait_until(
        lambda: Backtest.objects.get(pk=backtest.pk).status == JobStatus.COMPLETED,
        120,
        "the accepted backtest",
    )
    report("redis back: the accepted backtest ran", {"seconds_after_restart": waited})
    assert Backtest.objects.get(pk=backtest.pk).dispatches >= 1
