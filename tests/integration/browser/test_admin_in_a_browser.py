"""The admin a trader uses, in a real browser: what the charts draw, and list pages that fit a screen.

Each chart is checked where it ends up: the series and markers the charting library holds after
the page's script ran, and coloured pixels on its canvases, not only the JSON the page was sent.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from django.contrib import admin
from django.urls import reverse

from apps.core import clock
from apps.strategies.services.optimizations import (
    optimization_chunk_run,
    optimization_create,
    optimization_finish,
)
from apps.training.models import MLModel
from apps.training.services.model_training import model_train, model_train_request, training_spec_build
from tests.integration.admin.rows import ROW_MAKERS
from tests.integration.training.conftest import SHIPPED_HISTORY_NOW

SCREEN_WIDTH = 1400
# Plural endings that English never makes: "analysiss", "classs", "boxs", "strategys".
WRONG_PLURAL = re.compile(r"(ss|sis|xs|chs|shs|[^aeiou]ys)$", re.IGNORECASE)

# How many pixels of a colour a page's canvases inside ``selector`` hold (within a small tolerance,
# for anti-aliasing): proof that something of that colour was drawn there.
PIXELS_OF = """([selector, r, g, b]) => {
  let count = 0;
  for (const canvas of document.querySelectorAll(`${selector} canvas`)) {
    if (!canvas.width || !canvas.height) continue;
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i + 3] > 200 && Math.abs(pixels[i] - r) < 12 && Math.abs(pixels[i + 1] - g) < 12
          && Math.abs(pixels[i + 2] - b) < 12) count++;
    }
  }
  return count;
}"""
# The page's width, and how much of the list table hides behind the results box's own scroll bar.
WIDTHS = """() => {
  const results = document.querySelector("#changelist .results");
  return [document.documentElement.scrollWidth, results ? results.scrollWidth - results.clientWidth : 0];
}"""
ENTRY_BLUE = (0x15, 0x65, 0xC0)
STRATEGY_BLUE = (0x29, 0x62, 0xFF)
DRAWDOWN_RED = (0xEF, 0x53, 0x50)
FAN_MIDDLE_BLUE = (0x64, 0xB5, 0xF6)
BACKTEST_ORANGE = (0xFF, 0x6D, 0x00)
OVERFIT_RED = (0xC6, 0x28, 0x28)
SKILL_GREEN = (0x2E, 0x7D, 0x32)
# What the robustness panel's charts hold once drawn: each fan's bands and the backtest's path, each
# histogram's bars (value and colour), the curve's points and markers.
ROBUSTNESS_DRAWN = """() => {
  const values = (series) => series.data().map((p) => p.value);
  const drawn = {};
  for (const [id, chart] of Object.entries(window.robustnessCharts)) {
    if (chart.bars) {
      drawn[id] = {bins: chart.bars.data().map((p) => p.time), counts: values(chart.bars),
                   colours: chart.bars.data().map((p) => p.color)};
    } else if (chart.equity) {
      drawn[id] = {times: chart.equity.data().map((p) => p.time), equity: values(chart.equity),
                   markers: chart.equity.markers().map((m) => [m.time, m.text]),
                   base: chart.start.options().price};
    } else {
      const lines = ["p5", "p25", "p50", "p75", "p95", "backtest"];
      drawn[id] = Object.fromEntries(lines.map((k) => [k, values(chart[k])]));
      drawn[id].steps = chart.p50.data().map((p) => p.time);
    }
  }
  return drawn;
}"""


def _shot(page, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def _pixels(page, selector: str, colour: tuple[int, int, int]) -> int:
    return page.evaluate(PIXELS_OF, [selector, *colour])


def test_the_backtest_page_draws_every_trade_on_the_price_the_equity_and_the_drawdown(
    page, world, screenshots
):
    backtest = world.backtest
    trades = len(backtest.trades)

    page.goto(reverse("admin:strategies_backtest_change", args=[backtest.pk]))
    page.wait_for_function("window.backtestCharts !== undefined")
    drawn = page.evaluate(
        """() => {
          const {price, equity, drawdown} = window.backtestCharts;
          const markers = price.candles.markers();
          const levels = (series) => series ? series.data().filter((p) => p.value !== undefined).length : 0;
          const formatter = price.chart.options().timeScale.tickMarkFormatter;
          return {
            entries: markers.filter((m) => m.id.startsWith("entry-")).length,
            exits: markers.filter((m) => m.id.startsWith("exit-")).length,
            candles: price.candles.data().length,
            stops: levels(price.stop), targets: levels(price.target),
            equity: equity.strategy.data().length, hold: equity.hold.data().length,
            lastEquity: equity.strategy.data().at(-1).value,
            deepest: Math.min(...drawdown.strategy.data().map((p) => p.value)),
            maxDrawdownLine: drawdown.deepest && drawdown.deepest.options().price,
            ticks: [0, 1, 2, 3, 4].map((type) => formatter(1571306400, type)),
          };
        }"""
    )
    _shot(page, screenshots, "backtest")

    assert trades > 0
    assert (drawn["entries"], drawn["exits"]) == (trades, trades)
    assert drawn["candles"] == backtest.bars
    assert drawn["stops"] > 0 and drawn["targets"] > 0  # the strategy sets a 2% stop and a 5% target
    assert drawn["equity"] == drawn["hold"] == len(backtest.equity_curve["equity"])
    assert drawn["lastEquity"] == backtest.metrics["final_equity"]
    # The stored curve keeps at most 500 of the bars: its drawdown is at most the metric's.
    assert (
        -backtest.metrics["max_drawdown_pct"]
        <= drawn["deepest"]
        < -0.5 * backtest.metrics["max_drawdown_pct"]
    )
    assert drawn["maxDrawdownLine"] == -backtest.metrics["max_drawdown_pct"]
    # One way of writing times: ISO dates, intraday ticks with the hour; never a month's name.
    assert drawn["ticks"] == ["2019-10-17"] * 3 + ["10-17 10:00"] * 2
    assert _pixels(page, "#backtest-price-chart", ENTRY_BLUE) > 0
    assert _pixels(page, "#backtest-equity-chart", STRATEGY_BLUE) > 0
    assert _pixels(page, "#backtest-drawdown-chart", DRAWDOWN_RED) > 0


def test_the_backtest_robustness_panel_draws_each_monte_carlo_fan_and_its_drawdown_distribution(
    page, world, screenshots
):
    backtest = world.backtest
    carlo = backtest.robustness["monte_carlo"]

    page.goto(reverse("admin:strategies_backtest_change", args=[backtest.pk]))
    page.wait_for_function("window.robustnessCharts !== undefined")
    drawn = page.evaluate(ROBUSTNESS_DRAWN)
    page.locator(".robustness-panel").screenshot(path=str(screenshots / "backtest-robustness.png"))
    tables = page.inner_text(".robustness-tables")

    for method in ("trade_reshuffle", "block_bootstrap"):
        fan, stored = drawn[f"robustness-fan-{method}"], carlo[method]["fan"]
        assert fan == stored  # every band and the backtest's own path, step for step
        assert fan["p50"][-1] == pytest.approx(carlo[method]["final_return_pct"]["p50"])
        histogram = drawn[f"robustness-drawdowns-{method}"]
        assert histogram["counts"] == carlo[method]["max_drawdown_histogram"]["counts"]
        assert sum(histogram["counts"]) == carlo[method]["paths"]
        assert _pixels(page, f"#robustness-fan-{method}", FAN_MIDDLE_BLUE) > 0
        assert _pixels(page, f"#robustness-fan-{method}", BACKTEST_ORANGE) > 0
        assert _pixels(page, f"#robustness-drawdowns-{method}", DRAWDOWN_RED) > 0
    # The reshuffled trades all end at the backtest's return; its own order is one of them.
    reshuffled = drawn["robustness-fan-trade_reshuffle"]
    assert reshuffled["backtest"][-1] == pytest.approx(backtest.metrics["total_return_pct"])
    assert reshuffled["steps"][-1] == len(backtest.trades)
    assert f"{backtest.robustness['deflated_sharpe']:.3g}" in tables
    assert f"{backtest.robustness['trials']:,}" in tables
    assert page.locator(".robustness-missing").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= SCREEN_WIDTH


def test_the_optimisation_robustness_panel_draws_pbo_logits_and_the_stitched_out_of_sample_curve(
    page, world, screenshots
):
    run = world.optimization  # two trials, two folds
    pbo, walk = run.robustness["pbo"], run.robustness["walk_forward"]

    page.goto(reverse("admin:strategies_optimizationrun_change", args=[run.pk]))
    page.wait_for_function("window.robustnessCharts !== undefined")
    drawn = page.evaluate(ROBUSTNESS_DRAWN)
    page.locator(".robustness-panel").screenshot(path=str(screenshots / "optimisation-robustness.png"))

    logits, curve = drawn["robustness-logits"], drawn["robustness-walk-forward"]
    histogram = pbo["logit_histogram"]
    assert logits["counts"] == histogram["counts"] and sum(logits["counts"]) == pbo["combinations"]
    overfitted = sum(
        c for c, colour in zip(logits["counts"], logits["colours"], strict=True) if colour == "#c62828"
    )
    assert overfitted == round(pbo["pbo"] * pbo["combinations"])
    assert curve["equity"] == walk["equity_curve"]["equity"]
    assert curve["times"][0] == int(datetime.fromisoformat(walk["equity_curve"]["times"][0]).timestamp())
    assert [text.split(":")[0] for _, text in curve["markers"]] == [
        f"fold {f['fold']}" for f in walk["folds"]
    ]
    assert curve["base"] == float(run.initial_capital)
    if overfitted:
        assert _pixels(page, "#robustness-logits", OVERFIT_RED) > 0
    if overfitted < pbo["combinations"]:
        assert _pixels(page, "#robustness-logits", SKILL_GREEN) > 0
    assert _pixels(page, "#robustness-walk-forward", STRATEGY_BLUE) > 0
    assert f"{pbo['pbo']:.3g}" in page.inner_text(".robustness-tables")
    assert page.evaluate("document.documentElement.scrollWidth") <= SCREEN_WIDTH


def test_an_optimisation_draws_a_heatmap_square_per_trial_and_its_folds(page, world, screenshots):
    run = optimization_create(
        strategy=world.strategy, space={"rsi_period": [8, 11, 14, 17], "stop_loss_pct": [0.01, 0.03]}, folds=3
    )
    for chunk in range(run.chunks_total):
        optimization_chunk_run(run_id=run.pk, chunk_index=chunk)
    run = optimization_finish(run_id=run.pk)
    trials = [t for t in run.trials if "error" not in t]

    page.goto(reverse("admin:strategies_optimizationrun_change", args=[run.pk]))
    heatmap = page.locator("svg.trial-heatmap")
    _shot(page, screenshots, "optimisation")

    assert len(trials) == 8
    assert (heatmap.get_attribute("data-x"), heatmap.get_attribute("data-y")) == (
        "rsi_period",
        "stop_loss_pct",
    )
    assert page.locator("svg.trial-heatmap rect.heatmap-cell").count() == len(trials)
    assert page.locator("rect.fold-bar[data-series=in-sample]").count() == 3
    assert page.locator("rect.fold-bar[data-series=out-of-sample]").count() == 3
    assert heatmap.bounding_box()["width"] > 300


def test_an_optimisation_over_one_parameter_draws_bars_not_a_heatmap(page, world):
    run = world.optimization  # rsi_period 10 or 14, two folds

    page.goto(reverse("admin:strategies_optimizationrun_change", args=[run.pk]))

    assert page.locator("svg.trial-heatmap").count() == 0
    assert page.locator("rect.trial-bar[data-series=in-sample]").count() == 2
    assert page.locator("rect.trial-bar[data-series=out-of-sample]").count() == 2
    assert "one parameter (rsi_period)" in page.inner_text("figcaption >> nth=0")


def test_a_model_page_shows_its_holdout_scores_against_baselines_and_its_importances(
    page, btc_hourly, settings, tmp_path, screenshots
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    with clock.replaying(SHIPPED_HISTORY_NOW):
        spec = training_spec_build(
            symbol="BTCUSD", timeframe="1h", model_type="price_prediction", lookback_period=1000
        )
        model = model_train(model_pk=model_train_request(spec=spec).pk)
    assert isinstance(model, MLModel) and model.metrics, model.error

    page.goto(reverse("admin:training_mlmodel_change", args=[model.pk]))
    rows = page.locator("tr.holdout-row")
    bars = page.locator(".importance-bar")
    _shot(page, screenshots, "model")

    names = [rows.nth(i).locator("td.metric").inner_text() for i in range(rows.count())]
    assert {"accuracy", "roc_auc", "log_loss", "trading_total_return"} <= set(names)
    accuracy = rows.nth(names.index("accuracy"))
    assert f"{model.metrics['test']['baseline_accuracy']:.4g} (majority class)" in accuracy.inner_text()
    assert accuracy.locator(".holdout-bar").count() == 2
    test = model.metrics["test"]
    verdict = "better" if test["accuracy"] > test["baseline_accuracy"] else "not better"
    assert accuracy.locator(f"td.holdout-{'better' if verdict == 'better' else 'worse'}").inner_text() == (
        f"{verdict} (higher is better)"
    )
    assert bars.count() == min(30, len(model.feature_importances))
    assert bars.first.bounding_box()["width"] == pytest.approx(300, abs=1)  # the most important feature


def test_the_instrument_chart_opens_with_only_the_recent_confirmed_patterns(page, world, screenshots):
    page.goto(reverse("admin:market_instrument_chart", args=[world.btc.pk]))
    page.wait_for_function("document.getElementById('pattern-count').textContent !== ''")
    _shot(page, screenshots, "instrument-chart")
    shown = int(page.inner_text("#pattern-count").strip("()"))

    page.fill("input[name=patterns]", "chart")
    page.click("#chart-form button[type=submit]")
    page.wait_for_function("document.getElementById('pattern-count').textContent !== ''")
    all_chart_patterns = int(page.inner_text("#pattern-count").strip("()"))

    assert page.input_value("input[name=patterns]") == "chart"
    assert shown <= 10 < all_chart_patterns


def test_every_list_page_fits_a_1400_pixel_screen_and_the_sidebar_names_are_proper_plurals(
    page, world, screenshots
):
    for make in ROW_MAKERS.values():
        make(world)
    too_wide, plurals = [], []

    page.goto(reverse("admin:index"))
    for text in page.locator(
        "#content-main table caption a, #content-main th[scope=row] a"
    ).all_inner_texts():
        if WRONG_PLURAL.search(text.strip()):
            plurals.append(text)
    for _, model_admin in sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label):
        opts = model_admin.opts
        page.goto(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        width, hidden = page.evaluate(WIDTHS)
        if width > SCREEN_WIDTH or hidden > 0:
            too_wide.append(f"{opts.label} (page {width} px, {hidden} px of the table scrolled out of view)")
        if opts.label in {"trading.Order", "market.Instrument", "training.MLModel", "strategies.Strategy",
                          "strategies.Backtest", "strategies.OptimizationRun"}:  # fmt: skip
            _shot(page, screenshots, f"list-{opts.model_name}")
    sidebar = page.locator("#nav-sidebar").inner_text()

    assert too_wide == [], "wider than the screen: " + ", ".join(too_wide)
    assert plurals == []
    assert "Market analyses" in sidebar and "analysiss" not in sidebar.lower()
