"""Operators see everything: every page of every model registered in the admin (ours and the
third-party ones) opens for a superuser on a real row, every custom admin page opens too, and the
records of what happened can be read there but never added, changed or deleted.

The walks report every page that failed at once, not just the first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db import transaction
from django.db.models import Model
from django.http import HttpRequest
from django.test import Client
from django.urls import URLPattern, reverse

from tests.integration.admin.rows import ROW_MAKERS, AdminWorld

pytestmark = pytest.mark.django_db

REGISTERED: dict[str, admin.ModelAdmin] = {
    model._meta.label: model_admin for model, model_admin in admin.site._registry.items()
}
# What an operator configures in the admin. Every other registered model is a record of what
# happened (a job row, a decision, an order, a fill, a call, a snapshot): read-only there. A new
# model counts as a record until it is named here.
EDITABLE = frozenset(
    {
        "auth.User",
        "auth.Group",
        "knox.AuthToken",  # revoked by deleting it
        "axes.AccessAttempt",  # a locked-out username or address is unlocked by deleting it
        "django_celery_beat.PeriodicTask",  # the schedule: admin edits survive restarts
        "django_celery_beat.CrontabSchedule",
        "django_celery_beat.IntervalSchedule",
        "django_celery_beat.ClockedSchedule",
        "django_celery_beat.SolarSchedule",
        "market.Instrument",
        "strategies.Strategy",  # its status, with the actions that record a decision
        "trading.Account",  # risk limits and exchange keys
        "trading.StrategyAllocation",
    }
)
RECORDS = sorted(set(REGISTERED) - EDITABLE)
READ_ONLY = {"view": True, "add": False, "change": False, "delete": False, "bulk delete": False}
SAVE_BUTTONS = ('name="_save"', 'name="_continue"', 'name="_addanother"')
STANDARD_VIEWS = ("changelist", "add", "history", "delete", "change")
# The admin's views beyond each model's standard five, by URL name: where each opens in the world.
CUSTOM_PAGES: dict[str, Callable[[AdminWorld], str]] = {
    "auth_user_password_change": lambda world: reverse(
        "admin:auth_user_password_change", args=[world.user.pk]
    ),
    "market_instrument_chart": lambda world: reverse("admin:market_instrument_chart", args=[world.btc.pk]),
    "market_instrument_chart_data": lambda world: (
        reverse("admin:market_instrument_chart_data", args=[world.btc.pk])
        + "?timeframe=1h&bars=300&indicators=SMA(50),BB(20,2),RSI&patterns=all"
    ),
}


@dataclass
class Walk:
    """Requests through the admin client; every answer other than the expected one is recorded
    (a 500 as the exception the test client re-raises) instead of stopping the walk."""

    client: Client
    requests: int = 0
    failures: list[str] = field(default_factory=list)

    def get(self, what: str, url: str, expected: int = 200, **query: str) -> str:
        return self._request("get", what, url, expected, query)

    def post(self, what: str, url: str, expected: int, **form: str) -> str:
        return self._request("post", what, url, expected, form)

    def fail(self, what: str, problem: str) -> None:
        self.failures.append(f"{what}: {problem}")

    def _request(self, method: str, what: str, url: str, expected: int, data: dict[str, str]) -> str:
        """The page's text. Each request runs in a savepoint, so a failed query cannot abort the
        transaction of the pages after it (PostgreSQL)."""
        self.requests += 1
        request = f"{method.upper()} {url}" + (f" {data}" if data else "")
        try:
            with transaction.atomic():
                response = getattr(self.client, method)(url, data)
        except Exception as error:
            self.fail(what, f"{request}: {type(error).__name__}: {error}")
            return ""
        if response.status_code != expected:
            self.fail(what, f"{request}: {response.status_code}, expected {expected}")
        return "" if response.streaming else response.content.decode()


def _rows(world: AdminWorld, labels: list[str]) -> dict[str, Model]:
    rows = {}
    for label in labels:
        row = ROW_MAKERS[label](world)
        assert row is not None, f"the row maker of {label} found nothing"
        assert row._meta.label == label and row.pk is not None, f"the row maker of {label} made {row!r}"
        rows[label] = row
    return rows


def _url(model_admin: admin.ModelAdmin, view: str, *args: object) -> str:
    opts = model_admin.opts
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def _custom_url_names() -> Iterator[str]:
    for model_admin in REGISTERED.values():
        opts = model_admin.opts
        standard = {f"{opts.app_label}_{opts.model_name}_{view}" for view in STANDARD_VIEWS}
        for pattern in model_admin.get_urls():
            if isinstance(pattern, URLPattern) and pattern.name and pattern.name not in standard:
                yield pattern.name


@pytest.fixture
def operator(rf, admin_user) -> HttpRequest:
    """A request of the superuser the admin client is logged in as, to ask the model admins with."""
    request = rf.get("/admin/")
    request.user = admin_user
    return request


def test_every_registered_model_has_a_row_maker_and_every_custom_admin_page_a_url():
    assert sorted(set(REGISTERED) - set(ROW_MAKERS)) == [], "registered, without a row maker in rows.py"
    assert sorted(set(ROW_MAKERS) - set(REGISTERED)) == [], "a row maker of a model no longer registered"
    assert sorted(EDITABLE - set(REGISTERED)) == []
    assert sorted(_custom_url_names()) == sorted(CUSTOM_PAGES)


def test_every_registered_model_has_a_proper_plural_for_the_sidebar():
    wrong_endings = re.compile(r"(ss|sis|xs|chs|shs|[^aeiou]ys)$")  # "analysiss", "boxs", "strategys"
    plurals = {label: str(model_admin.opts.verbose_name_plural) for label, model_admin in REGISTERED.items()}

    assert {label: name for label, name in plurals.items() if wrong_endings.search(name)} == {}
    assert plurals["market.MarketAnalysis"] == "market analyses"


def test_every_admin_page_opens_for_a_superuser_on_a_real_row(admin_client, world, operator):
    rows = _rows(world, list(ROW_MAKERS))
    walk = Walk(admin_client)

    walk.get("the admin index", reverse("admin:index"))
    for app_label in sorted({label.split(".")[0] for label in REGISTERED}):
        walk.get(f"the {app_label} app", reverse("admin:app_list", args=[app_label]))
    for label, model_admin in sorted(REGISTERED.items()):
        row = rows[label]
        changelist = model_admin.get_changelist_instance(operator)
        walk.get(f"{label} list", _url(model_admin, "changelist"))
        if row.pk not in {shown.pk for shown in changelist.result_list}:
            walk.fail(f"{label} list", f"{row!r} is not on its first page")
        # A wrong sort or search field only shows when used: sort by every column at once, and search.
        every_column = ".".join(str(column) for column in range(len(changelist.list_display)))
        walk.get(f"{label} list sorted", _url(model_admin, "changelist"), o=every_column)
        if model_admin.get_search_fields(operator):
            walk.get(f"{label} search", _url(model_admin, "changelist"), q="BTC")
        walk.get(f"{label} {row.pk}", _url(model_admin, "change", quote(row.pk)))
        if model_admin.has_add_permission(operator):
            walk.get(f"{label} add", _url(model_admin, "add"))
        if model_admin.has_delete_permission(operator, row):  # the confirmation page: nothing is deleted
            walk.get(f"{label} {row.pk} delete", _url(model_admin, "delete", quote(row.pk)))
    for name, url in CUSTOM_PAGES.items():
        walk.get(name, url(world))

    assert walk.failures == [], "\n".join(walk.failures)


def test_records_can_be_read_but_never_added_changed_or_deleted(admin_client, world, operator):
    rows = _rows(world, RECORDS)
    walk = Walk(admin_client)

    for label in RECORDS:
        model_admin, row = REGISTERED[label], rows[label]
        what, change = f"{label} {row.pk}", _url(model_admin, "change", quote(row.pk))
        delete = _url(model_admin, "delete", quote(row.pk))
        allowed = {
            "view": model_admin.has_view_permission(operator, row),
            "add": model_admin.has_add_permission(operator),
            "change": model_admin.has_change_permission(operator, row),
            "delete": model_admin.has_delete_permission(operator, row),
            "bulk delete": "delete_selected" in model_admin.get_actions(operator),
        }
        if allowed != READ_ONLY:
            walk.fail(what, f"may {', '.join(name for name, may in allowed.items() if may)}")
        page = walk.get(what, change)
        if shown := [button for button in SAVE_BUTTONS if button in page]:
            walk.fail(what, f"its page has {', '.join(shown)}")
        walk.post(what, change, 403)
        walk.get(f"{label} add", _url(model_admin, "add"), 403)
        walk.get(f"{what} delete", delete, 403)
        walk.post(f"{what} delete", delete, 403, post="yes")
        if not model_admin.model.objects.filter(pk=row.pk).exists():
            walk.fail(what, "was deleted")

    assert walk.failures == [], "\n".join(walk.failures)


def test_the_charts_draw_real_rows(admin_client, world):
    """The instrument chart and the data it draws, a backtest's equity against buy and hold, an
    account's equity and a model's feature importances: pages that compute, checked beyond 200."""
    backtest, model = world.backtest, world.ml_model
    world.snapshot  # noqa: B018  (the account's value at two slots)

    chart = admin_client.get(CUSTOM_PAGES["market_instrument_chart"](world))
    data = admin_client.get(CUSTOM_PAGES["market_instrument_chart_data"](world)).json()
    backtest_page = admin_client.get(f"/admin/strategies/backtest/{backtest.pk}/change/").content.decode()
    account_page = admin_client.get(f"/admin/trading/account/{world.account.pk}/change/").content.decode()
    model_page = admin_client.get(f"/admin/training/mlmodel/{model.pk}/change/").content.decode()

    assert chart.status_code == 200
    assert '<option value="1h" selected>1h</option>' in chart.content.decode()
    assert (data["count"], len(data["times"]), [i["label"] for i in data["indicators"]]) == (
        300, 300, ["SMA(50)", "BB(20,2)", "RSI(14)"],
    )  # fmt: skip
    charts = backtest_page.split('id="backtest-charts-data" type="application/json">')[1].split("</script>")[
        0
    ]
    curves = json.loads(charts)
    assert len(curves["equity"]) == len(curves["buyAndHold"]) == len(curves["drawdown"]) > 400
    assert curves["equity"][-1]["value"] == backtest.metrics["final_equity"]
    assert len(curves["price"]["markers"]) == 2 * len(backtest.trades)
    assert "<polyline" in account_page and "2 snapshots" in account_page
    assert model_page.count("background:#79aec8") == len(model.feature_importances)
