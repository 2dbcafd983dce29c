"""The cap on queued jobs holds when one user's requests arrive at once: each is counted after the
previous one committed (the user's row lock on PostgreSQL, SQLite's write lock), so exactly the
cap's number of jobs are accepted."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.strategies.models import Backtest
from tests.integration.ownership.conftest import client_for
from tests.integration.ownership.test_matrix import WINDOW, make_strategy
from tests.integration.trading.threads import run_together

pytestmark = pytest.mark.django_db(transaction=True)


def test_requests_at_once_past_the_cap_are_429_and_exactly_the_cap_is_accepted(user, btc_hourly, settings):
    settings.API_MAX_QUEUED_JOBS_PER_USER = 3
    count = 12 if connection.vendor == "postgresql" else 6
    request = {"strategy_id": make_strategy(btc_hourly, user).strategy_id, **WINDOW}
    clients = [client_for(user) for _ in range(count)]

    responses = run_together(
        count, lambda i: clients[i].post("/api/strategies/backtest", request, format="json").status_code
    )

    assert sorted(responses) == [202] * 3 + [429] * (count - 3), responses
    assert Backtest.objects.filter(owner=user).count() == 3
