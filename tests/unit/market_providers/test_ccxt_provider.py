"""CcxtProvider with the real ccxt client against the fake Binance: markets, pagination, faults."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import ccxt
import numpy as np
import pytest

from apps.market.domain.candles import COLUMNS
from apps.market.providers.base import (
    PermanentProviderError,
    TemporaryProviderError,
    UnknownSymbolError,
)
from apps.market.providers.ccxt_provider import CcxtProvider
from tests.fakes.exchange import Fault, Market

from .conftest import HOUR_MS, START, hourly_rows, open_time

KLINES = "GET /api/v3/klines"


def request_starts(fake) -> list[int]:
    return [int(r.params["startTime"]) for r in fake.requests(KLINES)]


# -- markets ---------------------------------------------------------------------------------------


def test_it_points_every_api_url_at_the_override_and_keeps_rate_limiting_on(fake, make_provider):
    provider = make_provider()

    urls = provider.exchange.urls["api"]
    assert all(url.startswith(fake.base_url + "/") for url in urls.values())
    assert urls["public"] == fake.base_url + "/api/v3"
    assert urls["fapiPublic"] == fake.base_url + "/fapi/v1"
    assert provider.exchange.enableRateLimit is True


def test_it_loads_the_market_of_a_project_symbol_with_precision_and_limits(fake, make_provider):
    market = make_provider().load_market("BTCUSDT")

    assert (market.exchange, market.symbol, market.ccxt_symbol) == ("binance", "BTCUSDT", "BTC/USDT")
    assert (market.base, market.quote, market.active) == ("BTC", "USDT", True)
    assert market.amount_step == Decimal("0.00001")
    assert market.price_step == Decimal("0.01")
    assert (market.min_amount, market.max_amount) == (Decimal("0.00001"), Decimal("9000"))
    assert market.min_cost == Decimal("5")
    assert [r.endpoint for r in fake.requests()] == ["GET /api/v3/exchangeInfo"]


def test_it_reads_the_older_min_notional_filter_too(fake, make_provider):
    fake.add_market(Market("LTCUSDT", "LTC", "USDT", min_notional="10.00", notional_filter="MIN_NOTIONAL"))

    assert make_provider().load_market("LTCUSDT").min_cost == Decimal("10")


def test_it_finds_the_unified_symbol_in_the_exchange_market_list_not_by_cutting_the_string(
    fake, make_provider
):
    fake.add_market(Market("BNBFDUSD", "BNB", "FDUSD"))

    provider = make_provider()

    assert provider.ccxt_symbol("BNBFDUSD") == "BNB/FDUSD"
    assert provider.ccxt_symbol("BTC/USDT") == "BTC/USDT"


def test_it_rejects_an_unknown_symbol_without_asking_for_candles(fake, make_provider):
    with pytest.raises(UnknownSymbolError, match="did you mean BTCUSDT"):
        make_provider().fetch_ohlcv("BTCUSDX", "1h", START)

    assert fake.requests(KLINES) == []


def test_it_translates_the_exchange_calling_a_symbol_invalid_without_retrying(fake, make_provider):
    fake.load_klines("BTCUSDT", "1h", hourly_rows(10))
    fake.script(KLINES, Fault.binance_error(-1121, "Invalid symbol."))

    with pytest.raises(UnknownSymbolError) as raised:
        make_provider().fetch_ohlcv("BTCUSDT", "1h", START)

    assert isinstance(raised.value.__cause__, ccxt.BadSymbol)
    assert len(fake.requests(KLINES)) == 1


def test_it_rejects_a_timeframe_the_project_does_not_have(fake, make_provider):
    with pytest.raises(PermanentProviderError, match=r"unknown timeframe '7m'; valid: 1m, 5m"):
        make_provider().fetch_ohlcv("BTCUSDT", "7m", START)

    assert fake.requests() == []


def test_it_names_an_unknown_exchange():
    with pytest.raises(PermanentProviderError, match="unknown exchange 'nosuchexchange'"):
        CcxtProvider("nosuchexchange")


# -- pagination ------------------------------------------------------------------------------------


def test_it_paginates_from_since_advancing_past_the_last_open_time(fake, make_provider):
    rows = hourly_rows(2_500)
    fake.load_klines("BTCUSDT", "1h", rows)

    batch = make_provider().fetch_ohlcv("BTCUSDT", "1h", START)

    assert len(batch.candles) == 2_500
    assert request_starts(fake) == [rows[0][0], rows[999][0] + 1, rows[1999][0] + 1]
    assert {r.params["limit"] for r in fake.requests(KLINES)} == {"1000"}
    assert batch.candles.index.is_unique
    assert batch.candles.index.is_monotonic_increasing
    assert batch.candles.index[-1] == open_time(rows[-1])


def test_it_stops_when_a_page_comes_back_empty(fake, make_provider):
    fake.load_klines("BTCUSDT", "1h", hourly_rows(2_000))

    batch = make_provider().fetch_ohlcv("BTCUSDT", "1h", START)

    assert len(batch.candles) == 2_000
    assert len(fake.requests(KLINES)) == 3  # two full pages, then an empty one


def test_it_drops_candles_an_exchange_sends_again_on_the_next_page(fake, make_provider):
    rows = hourly_rows(1_500)
    fake.load_klines("BTCUSDT", "1h", rows)
    again = [[r[0], *r[1:], r[0] + HOUR_MS - 1, "0", 0, "0", "0", "0"] for r in rows[990:]]
    fake.script(KLINES, Fault.normal(), Fault(body=json.dumps(again)))

    batch = make_provider().fetch_ohlcv("BTCUSDT", "1h", START)

    assert len(batch.candles) == 1_500
    assert batch.candles.index.is_unique
    assert list(batch.candles.index) == [open_time(r) for r in rows]


def test_it_fetches_real_bars_across_pages_exactly_as_the_csv_has_them(fake, make_provider, btc_hourly_rows):
    rows = btc_hourly_rows[:2_500]
    fake.load_klines("BTCUSDT", "1h", btc_hourly_rows)
    until = open_time(rows[-1]) + timedelta(hours=1)

    batch = make_provider().fetch_ohlcv("BTCUSDT", "1h", open_time(rows[0]), until)

    expected = np.array([[float(v) for v in r[1:]] for r in rows])
    assert len(fake.requests(KLINES)) == 3
    assert batch.candles.shape == (2_500, 5)
    assert list(batch.candles.columns) == list(COLUMNS)
    assert all(dtype == np.float64 for dtype in batch.candles.dtypes)
    assert str(batch.candles.index.tz) == "UTC"
    np.testing.assert_array_equal(batch.candles.to_numpy(), expected)
    assert list(batch.candles.index) == [open_time(r) for r in rows]
    assert batch.complete_until == until


def test_it_keeps_candles_before_until_only(fake, make_provider):
    fake.load_klines("BTCUSDT", "1h", hourly_rows(100))
    until = START + timedelta(hours=40)

    batch = make_provider().fetch_ohlcv("BTCUSDT", "1h", START + timedelta(hours=10), until)

    assert batch.candles.index[0] == START + timedelta(hours=10)
    assert batch.candles.index[-1] == until - timedelta(hours=1)
    assert batch.complete_until == until


def test_it_reports_progress_after_every_page(fake, make_provider):
    fake.load_klines("BTCUSDT", "1h", hourly_rows(2_500))
    until = START + timedelta(hours=2_500)
    seen = []

    make_provider().fetch_ohlcv("BTCUSDT", "1h", START, until, progress=seen.append)

    assert [(p.pages, p.candles) for p in seen] == [(1, 1000), (2, 2000), (3, 2500)]
    assert seen[0].fraction == pytest.approx(999 / 2500)
    assert seen[-1].fraction == 1.0


# -- the forming candle ----------------------------------------------------------------------------


def test_it_never_hands_over_the_still_forming_candle(fake, make_provider):
    rows = hourly_rows(50)
    fake.load_klines("BTCUSDT", "1h", rows)
    forming = open_time(rows[-1])
    now = forming + timedelta(minutes=30)
    fake.set_time(int(now.timestamp() * 1000))

    batch = make_provider(now=lambda: now).fetch_ohlcv("BTCUSDT", "1h", START)

    assert fake.last_price("BTCUSDT") == Decimal(rows[-1][4])  # the exchange does show it
    assert batch.candles.index[-1] == forming - timedelta(hours=1)
    assert len(batch.candles) == 49
    assert batch.complete_until == forming


def test_it_asks_nothing_when_since_is_the_forming_candle(fake, make_provider):
    now = START + timedelta(minutes=10)

    batch = make_provider(now=lambda: now).fetch_ohlcv("BTCUSDT", "1h", START)

    assert batch.candles.empty
    assert list(batch.candles.columns) == list(COLUMNS)
    assert batch.complete_until == START
    assert fake.requests(KLINES) == []


def test_a_weekly_candle_is_still_forming_until_its_week_ends_on_monday(fake, make_provider):
    mondays = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(weeks=i) for i in range(4)]
    fake.load_klines("BTCUSDT", "1w", [(int(m.timestamp() * 1000), 10, 12, 9, 11, 100) for m in mondays])
    thursday = mondays[-1] + timedelta(days=3)

    batch = make_provider(now=lambda: thursday).fetch_ohlcv("BTCUSDT", "1w", mondays[0])

    assert list(batch.candles.index) == mondays[:3]
    assert batch.complete_until == mondays[-1]


# -- temporary failures are retried, permanent ones are not ----------------------------------------


def test_it_waits_as_long_as_a_rate_limit_answer_says_then_succeeds(fake, make_provider, sleeps):
    fake.load_klines("BTCUSDT", "1h", hourly_rows(10))
    fake.script(KLINES, Fault.rate_limited(retry_after=3))

    batch = make_provider().fetch_ohlcv("BTCUSDT", "1h", START)

    assert len(batch.candles) == 10
    assert [r.status for r in fake.requests(KLINES)] == [429, 200]
    assert sleeps == [3.0]


def test_it_backs_off_exponentially_on_a_rate_limit_without_retry_after(fake, make_provider, sleeps):
    fake.load_klines("BTCUSDT", "1h", hourly_rows(10))
    fake.script(KLINES, Fault.rate_limited(retry_after=None), Fault.rate_limited(retry_after=None))

    make_provider(backoff_base=0.25).fetch_ohlcv("BTCUSDT", "1h", START)

    assert sleeps == [0.25, 0.5]


def test_it_gives_up_at_once_when_asked_to_wait_longer_than_a_minute(fake, make_provider, sleeps):
    fake.script(KLINES, Fault.rate_limited(retry_after=600))

    with pytest.raises(TemporaryProviderError) as raised:
        make_provider().fetch_ohlcv("BTCUSDT", "1h", START)

    assert raised.value.retry_after == 600
    assert sleeps == []
    assert len(fake.requests(KLINES)) == 1


def test_it_retries_server_errors_then_succeeds(fake, make_provider, sleeps):
    fake.load_klines("BTCUSDT", "1h", hourly_rows(10))
    fake.script(KLINES, Fault.server_error(502), Fault.internal_error())

    batch = make_provider().fetch_ohlcv("BTCUSDT", "1h", START)

    assert len(batch.candles) == 10
    assert [r.status for r in fake.requests(KLINES)] == [502, 500, 200]
    assert sleeps == [0.01, 0.02]


def test_a_persistent_server_error_ends_in_a_temporary_error_after_max_retries(fake, make_provider, sleeps):
    fake.script(KLINES, *[Fault.server_error(503)] * 10)

    with pytest.raises(TemporaryProviderError, match="failed 4 times: ExchangeNotAvailable") as raised:
        make_provider(max_retries=3).fetch_ohlcv("BTCUSDT", "1h", START)

    assert len(fake.requests(KLINES)) == 4
    assert sleeps == [0.01, 0.02, 0.04]
    assert isinstance(raised.value.__cause__, ccxt.ExchangeNotAvailable)
    assert not isinstance(raised.value, ccxt.BaseError)


def test_it_retries_a_request_that_times_out(fake, make_provider, sleeps):
    fake.load_klines("BTCUSDT", "1h", hourly_rows(10))
    fake.script(KLINES, Fault.slow(3.0))

    batch = make_provider(timeout_ms=500).fetch_ohlcv("BTCUSDT", "1h", START)

    assert len(batch.candles) == 10
    assert [r.status for r in fake.requests(KLINES)] == [None, 200]  # the first is still held
    assert sleeps == [0.01]


def test_malformed_json_fails_cleanly_without_a_retry(fake, make_provider, sleeps):
    fake.load_klines("BTCUSDT", "1h", hourly_rows(10))
    fake.script(KLINES, Fault.malformed())

    with pytest.raises(PermanentProviderError, match="not JSON"):
        make_provider().fetch_ohlcv("BTCUSDT", "1h", START)

    assert len(fake.requests(KLINES)) == 1
    assert sleeps == []


def test_candles_that_do_not_parse_fail_instead_of_reading_as_an_empty_page(fake, make_provider):
    fake.load_klines("BTCUSDT", "1h", hourly_rows(10))
    fake.script(KLINES, Fault(body='[["soon", "1", "2", "0.5", "1.5", "10"]]'))

    with pytest.raises(PermanentProviderError, match="do not parse"):
        make_provider().fetch_ohlcv("BTCUSDT", "1h", START)


def test_impossible_candles_fail_as_permanent(fake, make_provider):
    first = int(START.timestamp() * 1000)
    fake.script(KLINES, Fault(body=json.dumps([[first, "10", "9", "8", "12", "1"]])))  # high below the close

    with pytest.raises(
        PermanentProviderError, match=r"invalid candles: .*high is below the open or the close"
    ):
        make_provider().fetch_ohlcv("BTCUSDT", "1h", START)


def test_a_refused_request_is_permanent_and_not_retried(fake, make_provider, sleeps):
    fake.script(KLINES, Fault.binance_error(-1100, "Illegal characters found in parameter 'startTime'."))

    with pytest.raises(PermanentProviderError, match="BadRequest"):
        make_provider().fetch_ohlcv("BTCUSDT", "1h", START)

    assert len(fake.requests(KLINES)) == 1
    assert sleeps == []


@pytest.mark.parametrize("body", ['{"timezone": "UTC", "symbols": [', '{"timezone": "UTC"}'])
def test_a_market_list_cut_off_or_missing_fails_cleanly_not_as_an_unknown_symbol(fake, make_provider, body):
    fake.script("GET /api/v3/exchangeInfo", Fault(body=body))

    with pytest.raises(PermanentProviderError) as raised:
        make_provider().load_market("BTCUSDT")

    assert not isinstance(raised.value, UnknownSymbolError)


def test_a_failure_loading_markets_is_retried_too(fake, make_provider, sleeps):
    fake.script("GET /api/v3/exchangeInfo", Fault.server_error(502))

    assert make_provider().load_market("ETHUSDT").amount_step == Decimal("0.0001")
    assert len(fake.requests("GET /api/v3/exchangeInfo")) == 2
