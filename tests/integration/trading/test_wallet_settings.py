"""The paper wallet's starting balances are read and checked when the settings load: a bad value
stops the process with a message naming the variable, before any account could be opened with it."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.settings_process import fresh_settings

_WALLET_ENVIRONMENT = ("TRADING_PAPER_STARTING_CASH", "TRADING_PAPER_STARTING_BALANCES")

_PRINTED = {"cash": "TRADING_PAPER_STARTING_CASH", "balances": "TRADING_PAPER_STARTING_BALANCES"}


def _settings(**env: str) -> subprocess.CompletedProcess:
    """The development settings as a fresh process sees them with ``env`` (and no other of ours)."""
    return fresh_settings(
        {"cash": "TRADING_PAPER_STARTING_CASH", "balances": "TRADING_PAPER_STARTING_BALANCES"},
        _WALLET_ENVIRONMENT,
        **env,
    )


def test_by_default_every_currency_starts_with_the_starting_cash():
    result = _settings()

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"cash": "10000", "balances": {}}


def test_per_currency_balances_are_read_in_any_case_and_spacing():
    result = _settings(
        TRADING_PAPER_STARTING_BALANCES=" usd=2500 , USDT=10000.5,", TRADING_PAPER_STARTING_CASH="7000"
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"cash": "7000", "balances": {"USD": "2500", "USDT": "10000.5"}}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TRADING_PAPER_STARTING_BALANCES", "USD", "must be CURRENCY=AMOUNT pairs separated by commas"),
        ("TRADING_PAPER_STARTING_BALANCES", "US-D=100", "must be CURRENCY=AMOUNT pairs"),
        (
            "TRADING_PAPER_STARTING_BALANCES",
            "USD=lots",
            "TRADING_PAPER_STARTING_BALANCES[USD] must be an amount above 0",
        ),
        (
            "TRADING_PAPER_STARTING_BALANCES",
            "USD=-5",
            "TRADING_PAPER_STARTING_BALANCES[USD] must be an amount above 0",
        ),
        ("TRADING_PAPER_STARTING_BALANCES", "USD=0.000000001", "8 after, not '0.000000001'"),
        ("TRADING_PAPER_STARTING_BALANCES", "USD=1,usd=2", "TRADING_PAPER_STARTING_BALANCES names USD twice"),
        ("TRADING_PAPER_STARTING_CASH", "1e21", "TRADING_PAPER_STARTING_CASH must be an amount above 0"),
        ("TRADING_PAPER_STARTING_CASH", "NaN", "TRADING_PAPER_STARTING_CASH must be an amount above 0"),
    ],
)
def test_a_bad_value_stops_the_settings_with_a_message(variable, value, message):
    result = _settings(**{variable: value})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
