"""The ownership matrix: every kind of owned object, every verb the API has for it, every caller; each
case asserted with its exact status and, whenever the answer is not a success, with the proof that
nothing changed in the database.

The callers act on an object the ``owner`` made (the owner themself, another user, staff, anonymous)
or on one the system made (a plain user, staff). Another user's object is answered exactly like one
that does not exist: a 404, or the 400 of an unknown id when the id is in the body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from apps.market.models import Instrument
from apps.strategies.models import (
    Backtest,
    GenerationRun,
    OptimizationChunk,
    OptimizationRun,
    Strategy,
    StrategyDecision,
    StrategyVersion,
)
from apps.strategies.services.backtests import backtest_create
from apps.strategies.services.generation import generation_create
from apps.strategies.services.optimizations import optimization_create
from apps.training.models import MLModel
from apps.training.services.model_training import model_train_request, training_spec_build
from tests.integration.active_strategies import strategy_create_as
from tests.integration.ownership.conftest import client_for
from tests.integration.training.conftest import train_now

pytestmark = pytest.mark.django_db

OWNER, OTHER, STAFF, ANONYMOUS = "owner", "other user", "staff", "anonymous"
USER_ON_SYSTEM, STAFF_ON_SYSTEM = "user on a system object", "staff on a system object"
CALLERS = (OWNER, OTHER, STAFF, ANONYMOUS, USER_ON_SYSTEM, STAFF_ON_SYSTEM)
ON_SYSTEM = (USER_ON_SYSTEM, STAFF_ON_SYSTEM)

# The status each caller gets, by what the verb does.
READ = {OWNER: 200, OTHER: 404, STAFF: 200, ANONYMOUS: 401, USER_ON_SYSTEM: 200, STAFF_ON_SYSTEM: 200}
LIST = READ | {OTHER: 200}  # a list answers, without the other user's object in it
CHANGE = {OWNER: 200, OTHER: 404, STAFF: 200, ANONYMOUS: 401, USER_ON_SYSTEM: 403, STAFF_ON_SYSTEM: 200}
START = {OWNER: 202, OTHER: 400, STAFF: 202, ANONYMOUS: 401, USER_ON_SYSTEM: 202, STAFF_ON_SYSTEM: 202}
USE = START | {OWNER: 200, STAFF: 200, USER_ON_SYSTEM: 200, STAFF_ON_SYSTEM: 200}  # answered at once
# Staff only, whoever owns the model; the gate then refuses this one (trained on 1,000 bars, it is
# degenerate): 409 with its numbers, the model unchanged.
PROMOTE = {OWNER: 403, OTHER: 403, STAFF: 409, ANONYMOUS: 401, USER_ON_SYSTEM: 403, STAFF_ON_SYSTEM: 409}

WINDOW = {"start_date": "2019-01-01T00:00:00Z", "end_date": "2019-03-01T00:00:00Z"}
RULES = [
    {"condition": "RSI(rsi_period) < rsi_oversold", "action": "buy", "priority": 1},
    {"condition": "RSI(rsi_period) > rsi_overbought", "action": "sell", "priority": 1},
]
PARAMETERS = {"rsi_period": 14, "rsi_oversold": 30, "rsi_overbought": 70}


# --- the objects --------------------------------------------------------------------------------------


def make_strategy(instrument: Instrument, owner: Any) -> Strategy:
    return strategy_create_as(
        name="Owned RSI",
        type="mean_reversion",
        instrument=instrument,
        timeframe="1h",
        parameters=dict(PARAMETERS),
        indicators=["RSI"],
        rules=[dict(rule) for rule in RULES],
        status="active",
        owner=owner,
    )


def _window() -> dict[str, datetime]:
    return {
        "start": datetime(2019, 1, 1, tzinfo=UTC),
        "end": datetime(2019, 3, 1, tzinfo=UTC),
    }


def make_backtest(instrument: Instrument, owner: Any) -> Backtest:
    return backtest_create(strategy=make_strategy(instrument, owner), owner=owner, **_window())


def make_optimization(instrument: Instrument, owner: Any) -> OptimizationRun:
    strategy = make_strategy(instrument, owner)
    return optimization_create(
        strategy=strategy, space={"rsi_period": [10, 14]}, folds=0, owner=owner, **_window()
    )


def make_generation(instrument: Instrument, owner: Any) -> GenerationRun:
    return generation_create(instrument=instrument, timeframe="1h", count=1, owner=owner)


def make_pending_model(instrument: Instrument, owner: Any) -> MLModel:
    spec = training_spec_build(
        symbol="BTCUSD", timeframe="1h", model_type="price_prediction", lookback_period=1000
    )
    return model_train_request(spec=spec, owner=owner)


_TRAINED: dict[str, Any] = {}


def make_trained_model(instrument: Instrument, owner: Any) -> MLModel:
    """A trained candidate: trained once for the module, then copied (row and artifact) per case."""
    if not _TRAINED:
        model = train_now()
        with default_storage.open(model.artifact.name, "rb") as stored:
            _TRAINED["artifact"] = stored.read()
        _TRAINED["row"] = MLModel.objects.filter(pk=model.pk).values().get()
        model.delete()
    row = {key: value for key, value in _TRAINED["row"].items() if key not in ("id", "owner_id", "artifact")}
    row["model_id"] = f"{row['model_id']}_{MLModel.objects.count()}"
    row["instrument_id"] = instrument.pk  # a new row in each test (ids differ on PostgreSQL)
    name = default_storage.save(f"ml_models/BTCUSD/{row['model_id']}.ubj", ContentFile(_TRAINED["artifact"]))
    return MLModel.objects.create(**row, owner=owner, artifact=name)


# --- the verbs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verb:
    """One operation of the API on one kind of object, and the status each caller gets."""

    kind: str
    name: str
    make: Callable[[Instrument, Any], Any]
    expected: dict[str, int]
    call: Callable[[APIClient, Any], Any]
    listed: Callable[[Any, Any], bool] | None = None  # for lists: is the object in the answer?

    @property
    def changes(self) -> bool:
        return self.expected is CHANGE or self.expected is START

    def __str__(self) -> str:
        return f"{self.kind}-{self.name}"


def _ids(response: Any, field: str) -> list[Any]:
    return [row[field] for row in response.json()["results"]]


VERBS = [
    Verb(
        "strategy", "list", make_strategy, LIST,
        lambda c, s: c.get("/api/strategies?limit=1000"),
        lambda r, s: s.strategy_id in _ids(r, "strategy_id"),
    ),
    Verb("strategy", "retrieve", make_strategy, READ, lambda c, s: c.get(f"/api/strategies/{s.strategy_id}")),
    Verb(
        "strategy", "versions", make_strategy, READ,
        lambda c, s: c.get(f"/api/strategies/{s.strategy_id}/versions"),
    ),
    Verb(
        "strategy", "decisions", make_strategy, READ,
        lambda c, s: c.get(f"/api/strategies/{s.strategy_id}/decisions"),
    ),
    Verb(
        "strategy", "edit rules", make_strategy, CHANGE,
        lambda c, s: c.patch(
            f"/api/strategies/{s.strategy_id}",
            {"parameters": {**PARAMETERS, "rsi_oversold": 25}},
            format="json",
        ),
    ),
    Verb(
        "strategy", "pause", make_strategy, CHANGE,
        lambda c, s: c.patch(f"/api/strategies/{s.strategy_id}", {"status": "paused"}, format="json"),
    ),
    Verb(
        "strategy", "delete", make_strategy, CHANGE,
        lambda c, s: c.delete(f"/api/strategies/{s.strategy_id}"),
    ),
    Verb(
        "strategy", "backtest it", make_strategy, START,
        lambda c, s: c.post(
            "/api/strategies/backtest", {"strategy_id": s.strategy_id, **WINDOW}, format="json"
        ),
    ),
    Verb(
        "strategy", "optimise it", make_strategy, START,
        lambda c, s: c.post(
            "/api/strategies/optimize",
            {"strategy_id": s.strategy_id, "space": {"rsi_period": [10, 14]}, "folds": 0, **WINDOW},
            format="json",
        ),
    ),
    Verb(
        "backtest", "list", make_backtest, LIST,
        lambda c, b: c.get("/api/strategies/backtests?limit=1000"),
        lambda r, b: b.pk in _ids(r, "id"),
    ),
    Verb(
        "backtest", "retrieve", make_backtest, READ,
        lambda c, b: c.get(f"/api/strategies/backtests/{b.pk}"),
    ),
    Verb(
        "backtest", "cancel", make_backtest, CHANGE,
        lambda c, b: c.post(f"/api/strategies/backtests/{b.pk}/cancel"),
    ),
    Verb(
        "optimisation", "list", make_optimization, LIST,
        lambda c, o: c.get("/api/strategies/optimizations?limit=1000"),
        lambda r, o: o.pk in _ids(r, "id"),
    ),
    Verb(
        "optimisation", "retrieve", make_optimization, READ,
        lambda c, o: c.get(f"/api/strategies/optimizations/{o.pk}"),
    ),
    Verb(
        "optimisation", "cancel", make_optimization, CHANGE,
        lambda c, o: c.post(f"/api/strategies/optimizations/{o.pk}/cancel"),
    ),
    Verb(
        "generation", "list", make_generation, LIST,
        lambda c, g: c.get("/api/strategies/generations?limit=1000"),
        lambda r, g: g.pk in _ids(r, "id"),
    ),
    Verb(
        "generation", "retrieve", make_generation, READ,
        lambda c, g: c.get(f"/api/strategies/generations/{g.pk}"),
    ),
    Verb(
        "generation", "cancel", make_generation, CHANGE,
        lambda c, g: c.post(f"/api/strategies/generations/{g.pk}/cancel"),
    ),
    Verb(
        "model", "list", make_pending_model, LIST,
        lambda c, m: c.get("/api/training/models?limit=1000"),
        lambda r, m: m.model_id in _ids(r, "model_id"),
    ),
    Verb(
        "model", "retrieve", make_pending_model, READ,
        lambda c, m: c.get(f"/api/training/models/{m.model_id}"),
    ),
    Verb(
        "model", "cancel training", make_pending_model, CHANGE,
        lambda c, m: c.post(f"/api/training/models/{m.model_id}/cancel"),
    ),
    Verb(
        "model", "evaluate", make_trained_model, USE,
        lambda c, m: c.post(
            "/api/training/models/evaluate", {"model_id": m.model_id, "evaluation_period": 365}, format="json"
        ),
    ),
    Verb(
        "model", "predict", make_trained_model, READ,
        lambda c, m: c.get(f"/api/training/models/{m.model_id}/predict"),
    ),
    Verb(
        "model", "promote", make_trained_model, PROMOTE,
        lambda c, m: c.post(f"/api/training/models/{m.model_id}/promote"),
    ),
]  # fmt: skip
CASES = [pytest.param(verb, caller, id=f"{verb}-{caller}") for verb in VERBS for caller in CALLERS]


# --- the callers and the database -----------------------------------------------------------------------


def snapshot() -> dict[str, Any]:
    """Everything a verb of the matrix could change."""
    return {
        "strategies": sorted(Strategy.objects.values_list("pk", "name", "status", "current_version_id")),
        "versions": StrategyVersion.objects.count(),
        "decisions": StrategyDecision.objects.count(),
        "backtests": sorted(Backtest.objects.values_list("pk", "status", "owner_id")),
        "optimisations": sorted(OptimizationRun.objects.values_list("pk", "status", "owner_id")),
        "chunks": sorted(OptimizationChunk.objects.values_list("pk", "status")),
        "generations": sorted(GenerationRun.objects.values_list("pk", "status")),
        "models": sorted(MLModel.objects.values_list("pk", "status", "stage")),
    }


def test_the_matrix_covers_every_kind_verb_and_caller():
    assert {verb.kind for verb in VERBS} == {"strategy", "backtest", "optimisation", "generation", "model"}
    assert len(CASES) == len(VERBS) * len(CALLERS) == 144


@pytest.mark.parametrize(("verb", "caller"), CASES)
def test_ownership(verb: Verb, caller: str, people, btc_hourly):
    obj = verb.make(btc_hourly, None if caller in ON_SYSTEM else people["owner"])
    acting = {
        OWNER: people["owner"],
        OTHER: people["other"],
        STAFF: people["staff"],
        ANONYMOUS: None,
        USER_ON_SYSTEM: people["owner"],
        STAFF_ON_SYSTEM: people["staff"],
    }[caller]
    client = client_for(acting)
    before = snapshot()

    response = verb.call(client, obj)

    expected = verb.expected[caller]
    assert response.status_code == expected, response.content
    after = snapshot()
    if expected >= 300 or not verb.changes:
        assert after == before  # refused, or a read: nothing changed
        if expected >= 400:
            assert set(response.json()) == {"error"}  # the one error shape
    else:
        assert after != before
    if verb.listed is not None and expected == 200:
        assert verb.listed(response, obj) is (caller != OTHER)
