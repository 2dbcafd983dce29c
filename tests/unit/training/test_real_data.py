"""A sanity run on real hourly BTC/USD candles: the pipeline runs end to end and its numbers are sane.

Real markets are close to a random walk at this scale: expect scores near chance. Only structure
and ranges are asserted; a strong score here would be a reason to look for a leak.
"""

from __future__ import annotations

import pandas as pd
import pytest

from apps.training.domain.evaluation import PROBABILITY_GRID
from apps.training.domain.features import CORE_V1
from apps.training.domain.pipeline import predict_latest, train
from tests.conftest import SHIPPED_MARKET_DATA

HOURLY_BTC = SHIPPED_MARKET_DATA / "btc_usd_coinbase_1h_2017-07-01_2019-10-17.csv"


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return pd.read_csv(HOURLY_BTC)


def test_a_price_model_on_real_btc_hours_gives_sane_out_of_sample_numbers(btc: pd.DataFrame) -> None:
    result = train(btc, "price_prediction", 1)
    test = result.metrics["test"]
    assert test["rows"] > 2_500
    for name in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "brier"):
        assert 0.0 <= test[name] <= 1.0, name
    assert 0.3 < test["accuracy"] < 0.7
    assert 0.3 < test["roc_auc"] < 0.7
    assert result.threshold in PROBABILITY_GRID
    assert test["trading_total_return"] > -1.0
    assert 0.0 <= test["trading_exposure"] <= 1.0
    windows = result.windows
    assert (
        windows["train"].end < windows["validation"].start < windows["validation"].end < windows["test"].start
    )
    assert 0.0 < predict_latest(result.model_bytes, btc, CORE_V1).value < 1.0


def test_a_volatility_model_on_real_btc_hours_reports_errors_in_return_units(btc: pd.DataFrame) -> None:
    test = train(btc, "volatility_prediction", 24).metrics["test"]
    assert 0.0 < test["rmse"] < 0.2
    assert 0.0 < test["baseline_rmse"] < 0.2
