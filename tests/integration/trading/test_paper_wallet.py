"""The paper wallet through the API: a newcomer's first order on the shipped data fills with no set-up,
an order naming no account goes to the paper account of its market's quote currency (opened by the
first order in it, with that currency's starting balance), and reads never open an account."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from apps.market.models import Instrument
from apps.market.services.instruments import instrument_get_or_create
from apps.strategies.models import StrategyStatus
from apps.trading.errors import OrderInputError
from apps.trading.models import Account, Order, OrderStatus, Position
from apps.trading.services.orders import order_instrument
from apps.trading.services.snapshots import portfolio_snapshot
from tests.unit.market_providers.conftest import hourly_rows

from .conftest import store_candles
from .test_allocations_api import _strategy

pytestmark = pytest.mark.django_db
D = Decimal
TRADES = "/api/trading/trades"
ALLOCATIONS = "/api/trading/allocations"
READS = ("/api/trading/portfolio", "/api/trading/positions", "/api/trading/portfolio/history")


def _buy(client, symbol: str, quantity: str = "0.01", **extra):
    order = {"symbol": symbol, "side": "BUY", "quantity": quantity, "type": "MARKET", **extra}
    return client.post(TRADES, order, format="json")


@pytest.fixture
def btcusd(db) -> Instrument:
    """BTCUSD quoted in USD (as the shipped data), five hourly candles (last close 102.25)."""
    instrument = instrument_get_or_create(symbol="BTCUSD", exchange="coinbase", timeframes=["1h"])
    store_candles(instrument, hourly_rows(5))
    return instrument


def test_a_newcomers_first_market_order_on_the_shipped_data_fills_and_shows_in_positions(api_client, user):
    call_command("load_demo_data", stdout=StringIO())
    assert not Account.objects.exists()

    answer = _buy(api_client, "BTCUSD")

    assert answer.status_code == 201, answer.json()
    order = answer.json()
    assert (order["status"], D(order["filled_quantity"])) == (OrderStatus.FILLED, D("0.01"))
    account = Account.objects.get(owner=user)
    assert (account.name, account.kind, account.quote_currency) == ("Paper USD", "paper", "USD")
    assert order["account"] == account.pk and account.starting_cash == D("10000")
    [position] = api_client.get("/api/trading/positions").json()
    assert (position["symbol"], D(position["quantity"]), position["account"]) == (
        "BTCUSD",
        D("0.01"),
        account.pk,
    )
    # The other shipped markets are quoted in USD too: the same wallet account trades them.
    assert _buy(api_client, "ETHUSD", "0.1").status_code == 201
    assert _buy(api_client, "LTCUSD", "1").status_code == 201
    assert Account.objects.filter(owner=user).count() == 1
    assert Position.objects.filter(account=account, quantity__gt=0).count() == 3


@pytest.mark.parametrize("path", READS)
def test_a_read_without_accounts_answers_an_empty_document_and_opens_no_account(api_client, path):
    before = Account.objects.count()

    answer = api_client.get(path)

    assert answer.status_code == 200
    assert Account.objects.count() == before == 0
    body = answer.json()
    if path.endswith("history"):
        assert (body["count"], body["results"]) == (0, [])
    elif path.endswith("positions"):
        assert body == []
    else:
        assert (body["account"], body["positions"], body["wallet"]) == (None, [], [])
        assert all(D(body[figure]) == 0 for figure in ("starting_cash", "cash", "equity", "total_pnl"))


def test_orders_in_two_quote_currencies_land_in_two_paper_accounts_with_their_balances(
    api_client, user, btcusd, btcusdt, settings
):
    settings.TRADING_PAPER_STARTING_CASH = "7000"
    settings.TRADING_PAPER_STARTING_BALANCES = {"USD": "2500"}

    usd, usdt = _buy(api_client, "BTCUSD", "1"), _buy(api_client, "BTCUSDT", "1")
    again = _buy(api_client, "BTC/USD", "1")

    assert (usd.status_code, usdt.status_code, again.status_code) == (201, 201, 201)
    accounts = {a.quote_currency: a for a in Account.objects.filter(owner=user).order_by("created_at")}
    assert {q: (a.name, a.kind, a.starting_cash) for q, a in accounts.items()} == {
        "USD": ("Paper USD", "paper", D("2500")),
        "USDT": ("Paper USDT", "paper", D("7000")),
    }
    assert [usd.json()["account"], usdt.json()["account"], again.json()["account"]] == [
        accounts["USD"].pk,
        accounts["USDT"].pk,
        accounts["USD"].pk,
    ]
    # Without ``account`` the portfolio shows the oldest account and lists the whole wallet.
    portfolio = api_client.get("/api/trading/portfolio").json()
    assert portfolio["account"]["id"] == accounts["USD"].pk
    wallet = [(line["account"], line["quote_currency"], D(line["cash"])) for line in portfolio["wallet"]]
    assert wallet == [(a.pk, a.quote_currency, a.cash) for a in (accounts["USD"], accounts["USDT"])]
    named = api_client.get("/api/trading/portfolio", {"account": accounts["USDT"].pk}).json()
    assert (named["account"]["quote_currency"], len(named["wallet"])) == ("USDT", 2)
    positions = api_client.get("/api/trading/positions").json()
    assert sorted((p["symbol"], p["account"]) for p in positions) == [
        ("BTCUSD", accounts["USD"].pk),
        ("BTCUSDT", accounts["USDT"].pk),
    ]
    for account in accounts.values():
        portfolio_snapshot(account=account)
    history = api_client.get("/api/trading/portfolio/history").json()["results"]
    assert sorted(row["account"] for row in history) == sorted(a.pk for a in accounts.values())


def test_an_explicit_account_in_another_currency_is_still_refused_and_opens_nothing(
    api_client, paper_account, btcusd
):
    answer = _buy(api_client, "BTCUSD", account=paper_account.pk)

    assert answer.status_code == 400
    assert answer.json()["error"]["fields"]["symbol"] == [
        f"BTCUSD is quoted in USD; account {paper_account.pk} holds USDT"
    ]
    assert list(Account.objects.all()) == [paper_account] and not Order.objects.exists()


def test_a_refused_first_order_opens_no_account(api_client, btcusd):
    malformed = _buy(api_client, "BTCUSD", quantity="0")
    unknown = _buy(api_client, "DOGEUSD")

    assert (malformed.status_code, malformed.json()["error"]["fields"]) == (
        400,
        {"quantity": ["must be above 0"]},
    )
    assert unknown.status_code == 400 and "unknown symbol" in unknown.json()["error"]["fields"]["symbol"][0]
    assert not Account.objects.exists()


def test_an_existing_paper_account_in_the_currency_is_the_wallets(api_client, paper_account, btcusdt):
    answer = _buy(api_client, "BTCUSDT", "1")

    assert answer.json()["account"] == paper_account.pk
    assert Account.objects.count() == 1


def test_a_replays_paper_account_is_never_the_wallets(api_client, user, make_account, btcusd):
    replay = make_account(name="Replay", quote_currency="USD", exchange="replay", auto_trading=True)

    answer = _buy(api_client, "BTCUSD", "1")

    assert answer.status_code == 201, answer.json()
    wallet = Account.objects.get(owner=user, name="Paper USD")
    assert answer.json()["account"] == wallet.pk != replay.pk and not replay.orders.exists()


def test_a_name_the_wallet_needs_taken_by_another_account_is_a_400_naming_it(
    api_client, make_account, btcusd
):
    make_account(name="Paper USD", quote_currency="USDT")

    answer = _buy(api_client, "BTCUSD")

    assert answer.status_code == 400
    assert "'Paper USD' is not a paper account in USD" in answer.json()["error"]["fields"]["account"][0]
    assert Account.objects.count() == 1 and not Order.objects.exists()


def test_an_allocation_naming_no_account_goes_to_the_wallet_account_of_its_quote_currency(
    api_client, user, btcusd
):
    strategy = _strategy(btcusd, "Dollar")
    draft = _strategy(btcusd, "Draft", status=StrategyStatus.DRAFT)

    refused = api_client.post(
        ALLOCATIONS, {"strategy_id": draft.strategy_id, "capital_pct": "0.5"}, format="json"
    )
    assert refused.status_code == 400 and not Account.objects.exists()  # a refusal opens nothing
    answer = api_client.post(
        ALLOCATIONS, {"strategy_id": strategy.strategy_id, "capital_pct": "0.5"}, format="json"
    )

    assert answer.status_code == 201, answer.json()
    account = Account.objects.get(owner=user)
    assert (answer.json()["account"], account.name, account.quote_currency) == (
        account.pk,
        "Paper USD",
        "USD",
    )


def test_a_symbol_stored_for_several_exchanges_is_traded_where_the_order_names(api_client, btcusd):
    """After a replay, BTCUSD is stored for coinbase and for the replay's own exchange."""
    copy = instrument_get_or_create(symbol="BTCUSD", exchange="replay", timeframes=["1h"])
    store_candles(copy, hourly_rows(5))

    ambiguous = _buy(api_client, "BTCUSD")
    named = _buy(api_client, "BTCUSD", exchange="coinbase")
    unknown = _buy(api_client, "BTCUSD", exchange="kraken")

    assert ambiguous.status_code == 400
    assert "listed on several exchanges (coinbase, replay); name the exchange" in str(ambiguous.json())
    assert named.status_code == 201 and named.json()["status"] == OrderStatus.FILLED
    assert Order.objects.get(pk=named.json()["id"]).instrument == btcusd
    assert unknown.status_code == 400 and "exchange" in unknown.json()["error"]["fields"]
    assert Order.objects.count() == 1 and Account.objects.count() == 1


def test_a_live_order_trades_only_on_its_account_s_exchange(btcusd):
    with pytest.raises(OrderInputError) as refused:
        order_instrument(symbol="BTCUSD", exchange="binance", live=True, listing="coinbase")

    assert (refused.value.field, refused.value.message) == (
        "exchange",
        "a live order trades on its account's exchange, binance",
    )
