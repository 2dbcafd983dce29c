/* The admin's backtest charts: the price with each trade's entry and exit (and its stop and target
 * levels when the version sets them), the equity against buy and hold, and the drawdown below.
 *
 * Reads the JSON the page embeds (admin_views.backtest_charts: UTC epoch seconds) and draws it with
 * TradingView Lightweight Charts, vendored by the market app (no network needed). The three charts
 * share one time axis: scrolling or zooming one moves the others. The drawn charts are kept on
 * window.backtestCharts for whoever inspects the page.
 */
(function () {
  "use strict";

  const UP = "#26a69a";
  const DOWN = "#ef5350";
  const ENTRY = "#1565c0";
  const STRATEGY = "#2962ff";
  const HOLD = "#ff6d00";
  const LABELLED_TRADES = 40; // more than this, and marker texts would cover the candles

  const data = JSON.parse(document.getElementById("backtest-charts-data").textContent);
  const style = getComputedStyle(document.documentElement);

  function createChart(id) {
    return LightweightCharts.createChart(document.getElementById(id), {
      autoSize: true,
      layout: {
        background: { color: style.getPropertyValue("--body-bg").trim() || "#fff" },
        textColor: style.getPropertyValue("--body-fg").trim() || "#333",
      },
      ...window.adminTimeAxis.options,
      rightPriceScale: { minimumWidth: 90 }, // equal widths keep the charts' bars aligned
    });
  }

  // An entry is an arrow in the trade's direction at the fill; an exit a circle, green for a win.
  function marker(m, labelled) {
    const long = m.side === "long";
    if (m.kind === "entry") {
      return {
        time: m.time,
        position: long ? "belowBar" : "aboveBar",
        shape: long ? "arrowUp" : "arrowDown",
        color: ENTRY,
        text: labelled ? `#${m.trade} ${long ? "buy" : "short"}` : "",
        id: `entry-${m.trade}`,
      };
    }
    return {
      time: m.time,
      position: long ? "aboveBar" : "belowBar",
      shape: "circle",
      color: m.won ? UP : DOWN,
      text: labelled ? `#${m.trade} ${m.reason}` : "",
      id: `exit-${m.trade}`,
    };
  }

  function levels(chart, times, values, color, title) {
    if (!values) return null;
    const series = chart.addLineSeries({
      color, lineWidth: 1, lineStyle: LightweightCharts.LineStyle.Dashed,
      priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false, title,
    });
    series.setData(times.map((time, i) => (values[i] === null ? { time } : { time, value: values[i] })));
    return series;
  }

  function drawPrice() {
    const p = data.price;
    const chart = createChart("backtest-price-chart");
    const candles = chart.addCandlestickSeries({ upColor: UP, downColor: DOWN, wickUpColor: UP, wickDownColor: DOWN });
    candles.setData(p.times.map((time, i) => ({ time, open: p.open[i], high: p.high[i], low: p.low[i], close: p.close[i] })));
    const labelled = p.markers.length <= 2 * LABELLED_TRADES;
    candles.setMarkers(p.markers.map((m) => marker(m, labelled)));
    const stop = levels(chart, p.times, p.stop, DOWN, "stop");
    const target = levels(chart, p.times, p.target, UP, "target");
    return { chart, candles, stop, target };
  }

  function drawEquity() {
    const chart = createChart("backtest-equity-chart");
    const strategy = chart.addLineSeries({ color: STRATEGY, lineWidth: 2, priceLineVisible: false, title: "strategy" });
    strategy.setData(data.equity);
    const hold = chart.addLineSeries({ color: HOLD, lineWidth: 1, priceLineVisible: false, title: "buy and hold" });
    hold.setData(data.buyAndHold);
    return { chart, strategy, hold };
  }

  function drawDrawdown() {
    const chart = createChart("backtest-drawdown-chart");
    const percent = { type: "custom", formatter: (value) => `${value.toFixed(1)}%` };
    const strategy = chart.addAreaSeries({
      lineColor: DOWN, topColor: "rgba(239, 83, 80, 0.05)", bottomColor: "rgba(239, 83, 80, 0.4)",
      lineWidth: 1, priceFormat: percent, priceLineVisible: false, title: "strategy",
    });
    strategy.setData(data.drawdown);
    const hold = chart.addLineSeries({ color: HOLD, lineWidth: 1, priceFormat: percent, priceLineVisible: false, title: "buy and hold" });
    hold.setData(data.holdDrawdown);
    // The stored curve keeps a sample of the bars; the metric's deepest fall is over every bar.
    const deepest = data.maxDrawdown === null ? null : strategy.createPriceLine({
      price: -data.maxDrawdown, color: DOWN, lineStyle: LightweightCharts.LineStyle.Dotted,
      axisLabelVisible: true, title: "max drawdown",
    });
    return { chart, strategy, hold, deepest };
  }

  // Kept in step by time, not bar index: the price may have merged bars, the curves have every bar.
  function keepInStep(charts) {
    let syncing = false;
    for (const source of charts) {
      source.timeScale().subscribeVisibleTimeRangeChange((range) => {
        if (syncing || range === null) return;
        syncing = true;
        charts.filter((chart) => chart !== source).forEach((chart) => chart.timeScale().setVisibleRange(range));
        syncing = false;
      });
    }
  }

  const price = drawPrice();
  const equity = drawEquity();
  const drawdown = drawDrawdown();
  const charts = [price.chart, equity.chart, drawdown.chart];
  charts.forEach((chart) => chart.timeScale().fitContent());
  keepInStep(charts);
  window.backtestCharts = { price, equity, drawdown };
})();
