"""`manage.py train_model`: trains in-process with progress output; bad input exits non-zero, saying why."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.training.models import MLModel
from tests.integration.worker import REPO_ROOT, _database_environment

ARGS = ["--symbol", "BTCUSD", "--timeframe", "1h", "--model-type", "price_prediction"]


@pytest.mark.django_db
def test_it_trains_a_candidate_and_prints_progress_and_metrics(btc_hourly):
    out = StringIO()

    call_command(
        "train_model",
        *ARGS,
        "--lookback",
        "1000",
        "--hyperparameters",
        '{"max_depth": 2, "n_estimators": 50}',
        "--promote",
        stdout=out,
    )

    model = MLModel.objects.get()
    text = out.getvalue()
    assert f"{model.model_id}: training on 1000 bars of BTCUSD 1h" in text
    assert "[ 10%] loaded 1500 candles" in text
    assert "[ 90%] fitted" in text
    assert f"{model.model_id} is a candidate" in text
    assert "test: rows 150, accuracy" in text
    assert model.artifact_sha256 in text
    assert "promoted to champion" in text
    assert model.stage == "champion"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "--symbol",
                "NOPE",
                "--timeframe",
                "1h",
                "--model-type",
                "price_prediction",
                "--lookback",
                "1000",
            ],
            "--symbol",
        ),
        ([*ARGS[:4], "--model-type", "sentiment", "--lookback", "1000"], "--model-type: unknown model_type"),
        (
            [*ARGS, "--lookback", "99999"],
            "--lookback: lookback_period 99999 is longer than the stored history",
        ),
        (
            [*ARGS, "--lookback", "1000", "--hyperparameters", "[1]"],
            "--hyperparameters must be a JSON object",
        ),
        ([*ARGS, "--lookback", "1000", "--hyperparameters", '{"eta": 1}'], "--hyperparameters: unknown"),
    ],
)
def test_bad_input_is_refused_naming_the_option_and_trains_nothing(btc_hourly, args, message):
    with pytest.raises(CommandError, match=message.replace("[", r"\[")):
        call_command("train_model", *args, stdout=StringIO())

    assert not MLModel.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_zero_when_trained_and_non_zero_with_a_message_on_bad_input(btc_hourly):
    env = {**os.environ, **_database_environment(), "DJANGO_SETTINGS_MODULE": "tests.settings"}

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "manage.py", "train_model", *args]
        return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)

    trained = run(*ARGS, "--lookback", "1000")
    refused = run(*ARGS, "--lookback", "-1")

    assert trained.returncode == 0, trained.stderr
    assert "is a candidate" in trained.stdout
    assert refused.returncode == 1
    assert "--lookback: lookback_period must be at least 334 bars at horizon 1, got -1" in refused.stderr
    assert MLModel.objects.count() == 1
