/* The admin's instrument chart: candles, indicator overlays and panes, pattern markers.
 *
 * Reads the form's values, fetches the chart data endpoint with them and draws it with
 * TradingView Lightweight Charts (vendored under ./vendor, no network needed). Indicator
 * outputs whose pane is "price" overlay the candles; each other pane is a chart of its own
 * below, its time scale kept in step with the price chart.
 */
(function () {
  "use strict";

  const LINE_COLORS = ["#2962ff", "#ff6d00", "#8e24aa", "#00897b", "#c2185b", "#6d4c41", "#546e7a", "#fbc02d"];
  const UP = "#26a69a";
  const DOWN = "#ef5350";
  const MARKERS = {
    bullish: { position: "belowBar", shape: "arrowUp", color: UP },
    bearish: { position: "aboveBar", shape: "arrowDown", color: DOWN },
    neutral: { position: "aboveBar", shape: "circle", color: "#78909c" },
  };

  const config = JSON.parse(document.getElementById("chart-config").textContent);
  const form = document.getElementById("chart-form");
  const status = document.getElementById("chart-status");

  function themeColor(variable, fallback) {
    return getComputedStyle(document.documentElement).getPropertyValue(variable).trim() || fallback;
  }

  // A pane: a legend line above a chart; the price pane comes first, oscillators below it.
  function createPane(className) {
    const legend = document.createElement("div");
    legend.className = "chart-legend";
    const container = document.createElement("div");
    container.className = `chart-pane ${className}`;
    document.getElementById("chart-area").append(legend, container);
    return { chart: createChart(container), legend };
  }

  function addToLegend(pane, text, color) {
    const item = document.createElement("span");
    item.textContent = text;
    item.style.color = color;
    pane.legend.append(item);
  }

  function createChart(container) {
    return LightweightCharts.createChart(container, {
      autoSize: true,
      layout: { background: { color: themeColor("--body-bg", "#fff") }, textColor: themeColor("--body-fg", "#333") },
      ...window.adminTimeAxis.options,
      rightPriceScale: { minimumWidth: 90 }, // equal widths keep the panes' bars vertically aligned
    });
  }

  // Null values become whitespace points, so every series has one point per bar and the
  // panes can be kept in step by bar index.
  function points(times, values) {
    return times.map((time, i) => (values[i] === null ? { time } : { time, value: values[i] }));
  }

  function addOutput(chart, output, color) {
    const common = { color, priceLineVisible: false, lastValueVisible: false };
    if (output.style === "histogram") {
      return chart.addHistogramSeries(common);
    }
    if (output.style === "dots") {
      return chart.addLineSeries({ ...common, lineVisible: false, pointMarkersVisible: true, pointMarkersRadius: 1.5 });
    }
    return chart.addLineSeries({ ...common, lineWidth: 1 });
  }

  function drawCandles(chart, data) {
    const c = data.candles;
    const series = chart.addCandlestickSeries({ upColor: UP, downColor: DOWN, wickUpColor: UP, wickDownColor: DOWN });
    series.setData(data.times.map((time, i) => ({ time, open: c.open[i], high: c.high[i], low: c.low[i], close: c.close[i] })));
    return series;
  }

  function drawIndicators(pricePane, data) {
    const panes = new Map([["price", pricePane]]);
    let colorIndex = 0;
    for (const indicator of data.indicators) {
      for (const output of indicator.outputs.filter((o) => o.style !== "hidden")) {
        if (!panes.has(output.pane)) {
          panes.set(output.pane, createPane("chart-pane-oscillator"));
        }
        const pane = panes.get(output.pane);
        const label = indicator.outputs.length > 1 ? `${indicator.label}.${output.name}` : indicator.label;
        const color = LINE_COLORS[colorIndex++ % LINE_COLORS.length];
        addOutput(pane.chart, output, color).setData(points(data.times, output.values));
        addToLegend(pane, label, color);
      }
    }
    return [...panes.values()].map((pane) => pane.chart);
  }

  function drawPatterns(candleSeries, patterns) {
    const markers = patterns
      .map((p) => ({ ...MARKERS[p.direction], time: Date.parse(p.end_time) / 1000, text: p.pattern }))
      .sort((a, b) => a.time - b.time);
    candleSeries.setMarkers(markers);
  }

  function listPatterns(patterns) {
    const body = document.querySelector("#pattern-table tbody");
    body.replaceChildren();
    for (const p of [...patterns].reverse()) {
      const levels = Object.entries(p.levels).map(([name, value]) => `${name} ${value.toPrecision(6)}`).join(", ");
      const row = body.insertRow();
      for (const text of [p.pattern, p.direction, p.start_time, p.end_time, p.confirmed_time, p.confidence.toFixed(2), levels]) {
        row.insertCell().textContent = text;
      }
    }
    document.getElementById("pattern-count").textContent = `(${patterns.length})`;
  }

  function keepInStep(charts) {
    let syncing = false;
    for (const source of charts) {
      source.timeScale().subscribeVisibleLogicalRangeChange((range) => {
        if (syncing || range === null) return;
        syncing = true;
        charts.filter((chart) => chart !== source).forEach((chart) => chart.timeScale().setVisibleLogicalRange(range));
        syncing = false;
      });
    }
  }

  function showError(body) {
    const fields = Object.entries(body.error.fields || {}).map(([name, problems]) => `${name}: ${problems.join(" ")}`);
    status.textContent = fields.length ? fields.join(" — ") : body.error.message;
    status.classList.add("errornote");
  }

  async function load() {
    status.textContent = "Loading…";
    const query = new URLSearchParams(new FormData(form));
    const response = await fetch(`${config.dataUrl}?${query}`, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) {
      showError(body);
      return;
    }
    const pricePane = createPane("chart-pane-price");
    const candleSeries = drawCandles(pricePane.chart, body);
    const charts = drawIndicators(pricePane, body);
    drawPatterns(candleSeries, body.patterns);
    listPatterns(body.patterns);
    keepInStep(charts);
    pricePane.chart.timeScale().fitContent();
    status.textContent = `${body.count} ${body.timeframe} bars of ${body.instrument.symbol} (${body.instrument.exchange}), times in UTC.`;
  }

  load().catch((error) => {
    status.textContent = `Could not draw the chart: ${error}`;
    status.classList.add("errornote");
  });
})();
