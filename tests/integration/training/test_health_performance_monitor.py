"""The health document's performance_monitor reports each champion's accuracy on bars it never saw."""

from __future__ import annotations

import pytest

from apps.training.services.promotion import model_promote_if_better
from tests.integration.training.conftest import SKILLED, train_now

pytestmark = pytest.mark.django_db


def test_a_champion_appears_with_its_live_accuracy(staff_client, btc_hourly):
    champion = train_now(hyperparameters=SKILLED)
    decision = model_promote_if_better(candidate=champion)
    assert decision.promoted, decision.reason

    monitor = staff_client.get("/api/health").json()["components"]["performance_monitor"]

    entry = next(m for m in monitor["models"] if m["model_id"] == champion.model_id)
    assert entry["seen_until"] == champion.seen_until.isoformat()
    assert entry["accuracy"] is None or 0 <= entry["accuracy"] <= 1
    assert champion.model_id in monitor["message"] or "no outcomes yet" in monitor["message"]


def test_without_a_champion_it_says_so(staff_client, db):
    monitor = staff_client.get("/api/health").json()["components"]["performance_monitor"]
    assert (monitor["status"], monitor["message"], monitor["models"]) == (
        "healthy",
        "Performance monitor operational",
        [],
    )
