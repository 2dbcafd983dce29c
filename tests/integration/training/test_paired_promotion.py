"""The promotion gate on seeded markets: a planted edge becomes champion and a random walk's model does
not, and a champion gives way only to a candidate a paired test on the same bars finds better."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from apps.core import clock
from apps.market.models import Instrument
from apps.market.services.candles import candles_store
from apps.market.services.instruments import instrument_get_or_create
from apps.training.models import MLModel
from apps.training.services.model_training import model_train, model_train_request, training_spec_build
from apps.training.services.promotion import model_promote_if_better
from tests.integration.training.conftest import SHIPPED_HISTORY_NOW
from tests.unit.training.synthetic import autocorrelated_candles

pytestmark = pytest.mark.django_db

END = "2019-10-17 09:00"  # the newest bar closes just before the tests' clock: fresh data
SMALL = {"max_depth": 2, "n_estimators": 30}


def _market(symbol: str, frame: pd.DataFrame) -> Instrument:
    instrument = instrument_get_or_create(symbol=symbol, exchange="coinbase", timeframes=["1h"])
    candles_store(instrument=instrument, timeframe="1h", frame=frame)
    return instrument


def _train(symbol: str) -> MLModel:
    spec = training_spec_build(
        symbol=symbol,
        timeframe="1h",
        model_type="price_prediction",
        lookback_period=1000,
        hyperparameters=SMALL,
    )
    model = model_train(model_pk=model_train_request(spec=spec).pk)
    assert model is not None and model.stage == "candidate" and not model.degenerate, model
    return model


def test_a_planted_edge_becomes_champion_and_a_random_walks_model_is_refused_with_its_numbers():
    # Returns with an AR(1) coefficient of -0.3: the sign of each bar's return predicts the next one's.
    _market("EDGEUSD", autocorrelated_candles((-0.3,), (1500,), seed=2, end=END))
    _market("WALKUSD", autocorrelated_candles((0.0,), (1500,), seed=5, end=END))
    edge, walk = _train("EDGEUSD"), _train("WALKUSD")

    accepted = model_promote_if_better(candidate=edge)
    refused = model_promote_if_better(candidate=walk)

    assert accepted.promoted, accepted.reason
    assert accepted.deflated_sharpe > 0.999
    assert not refused.promoted
    # The random walk's model ranks its holdout better than a coin (ROC AUC 0.544) and trades it
    # better than holding (-1.9 % against -5.3 %): the margin rule would have promoted it. Its
    # signal returns are what luck gives: a deflated Sharpe ratio of 0.508.
    assert refused.candidate_value == pytest.approx(0.544, abs=1e-3)
    scores = walk.metrics["test"]
    assert (scores["trading_total_return"], scores["buy_hold_total_return"]) == pytest.approx(
        (-0.019, -0.053), abs=1e-3
    )
    assert refused.deflated_sharpe == pytest.approx(0.508, abs=1e-3)
    assert refused.reason.startswith(
        "no champion yet, and the deflated Sharpe ratio of its holdout signal returns is 0.508 (per-bar "
        "Sharpe 0.001"
    )
    assert refused.reason.endswith(
        "over 150 bars, 1 trials in its model family): at least 0.95 is needed (STRATEGY_MIN_DEFLATED_SHARPE)"
    )
    numbers = refused.evidence
    assert (numbers["min_deflated_sharpe"], numbers["paired_test"]) == (0.95, None)
    assert numbers["candidate_sharpe"]["deflated_sharpe"] == refused.deflated_sharpe
    walk.refresh_from_db()
    assert walk.stage == "candidate"


def test_a_champion_gives_way_only_to_a_candidate_the_paired_test_finds_better():
    # Momentum (AR +0.3) for 1500 bars, then reversal (AR -0.3): the edge the champion learned turns.
    history = autocorrelated_candles((0.3, -0.3), (1500, 1500), seed=1, end=END)
    instrument = _market("TURNUSD", history.iloc[:1500])
    then: datetime = history.index[1499].to_pydatetime() + timedelta(hours=1, minutes=5)
    with clock.replaying(then):
        champion = _train("TURNUSD")
        first = model_promote_if_better(candidate=champion)
    assert first.promoted, first.reason
    candles_store(instrument=instrument, timeframe="1h", frame=history.iloc[1500:])
    assert clock.now() == SHIPPED_HISTORY_NOW
    candidate = _train("TURNUSD")

    decision = model_promote_if_better(candidate=candidate)

    assert decision.promoted, decision.reason
    champion.refresh_from_db()
    assert champion.stage == "retired"
    # On the 150 bars after the candidate's training, both evaluated: the old edge now loses.
    assert decision.holdout_start == candidate.seen_until + timedelta(hours=1)
    assert decision.evidence["paired_test"]["observations"] == 150
    assert decision.mean_difference == pytest.approx(0.0051, abs=1e-4)
    assert decision.p_value < 1e-5
    assert decision.evidence["candidate_sharpe"]["trials"] == 2
    assert decision.deflated_sharpe > 0.99
    assert "significantly better" in decision.reason
