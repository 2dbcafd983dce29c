/* The admin's robustness panel: Monte Carlo fans, histograms (drawdowns, PBO's logits) and the
 * stitched out-of-sample equity, drawn with TradingView Lightweight Charts (vendored by the market app).
 *
 * Reads the chart specs the page embeds (admin_robustness: one per chart, each naming the element
 * it is drawn in). A fan and a histogram have no time axis: their points are steps (trades or bars
 * from the start) and bins, given to the library as small whole "times" that the axis labels write
 * back as steps and bin ranges. The drawn charts are kept on window.robustnessCharts, by id.
 */
(function () {
  "use strict";

  const LIGHT = "#bbdefb"; // 5th-25th and 75th-95th percentile
  const MIDDLE = "#64b5f6"; // 25th-75th
  const MEDIAN = "#0d47a1";
  const OWN = "#ff6d00"; // the backtest's own path
  const EQUITY = "#2962ff";
  const FOLD = "#1565c0";

  const style = getComputedStyle(document.documentElement);
  const background = style.getPropertyValue("--body-bg").trim() || "#fff";
  const foreground = style.getPropertyValue("--body-fg").trim() || "#333";
  const percent = { type: "custom", formatter: (value) => `${value.toFixed(1)}%`, minMove: 0.01 };

  function number(value) {
    return String(Number(value.toPrecision(3)));
  }

  function createChart(spec, options) {
    return LightweightCharts.createChart(document.getElementById(spec.id), {
      autoSize: true,
      layout: { background: { color: background }, textColor: foreground },
      rightPriceScale: { minimumWidth: 70 },
      handleScroll: false,
      handleScale: false,
      ...options,
    });
  }

  // Steps or bins as the library's "times": the axis and the crosshair write them back in words.
  function stepAxis(tick, crosshair) {
    return {
      localization: { timeFormatter: crosshair },
      timeScale: { tickMarkFormatter: tick, fixLeftEdge: true, fixRightEdge: true },
    };
  }

  function drawFan(spec) {
    const chart = createChart(spec, stepAxis(String, (step) => `${spec.unit} ${step}`));
    const quiet = { lineWidth: 1, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false, priceFormat: percent };
    // Each area fills down to the bottom: drawn from the highest band down, each covers the one before
    // below its line, which leaves the bands between the lines.
    const area = (color) => chart.addAreaSeries({ ...quiet, lineColor: color, topColor: color, bottomColor: color });
    const line = (color, title) => chart.addLineSeries({ ...quiet, color, lineWidth: 2, title, crosshairMarkerVisible: true });
    const points = (values) => spec.steps.map((time, i) => (values[i] === null ? { time } : { time, value: values[i] }));
    const drawn = { chart };
    for (const [band, color] of [["p95", LIGHT], ["p75", MIDDLE], ["p25", LIGHT], ["p5", background]]) {
      drawn[band] = area(color);
      drawn[band].setData(points(spec.bands[band]));
    }
    drawn.p50 = line(MEDIAN, "median");
    drawn.p50.setData(points(spec.bands.p50));
    drawn.backtest = line(OWN, "backtest");
    drawn.backtest.setData(points(spec.backtest));
    chart.timeScale().fitContent();
    return drawn;
  }

  function drawHistogram(spec) {
    const edges = spec.edges;
    const centre = (bin) => number((edges[bin] + edges[bin + 1]) / 2);
    const range = (bin) => `${number(edges[bin])} to ${number(edges[bin + 1])}${spec.unit}`;
    const chart = createChart(spec, stepAxis(centre, range));
    const bars = chart.addHistogramSeries({ priceLineVisible: false, lastValueVisible: false, priceFormat: { type: "volume" } });
    bars.setData(spec.counts.map((value, bin) => ({ time: bin, value, color: spec.colours[bin] })));
    chart.timeScale().fitContent();
    return { chart, bars };
  }

  function drawCurve(spec) {
    const chart = createChart(spec, window.adminTimeAxis.options);
    const equity = chart.addLineSeries({ color: EQUITY, lineWidth: 2, priceLineVisible: false, title: "out of sample" });
    equity.setData(spec.points);
    equity.setMarkers(spec.markers.map((m, i) => ({
      time: m.time, position: "aboveBar", shape: "arrowDown", color: FOLD, text: m.text, id: `fold-${i}`,
    })));
    const start = equity.createPriceLine({
      price: spec.base, color: foreground, lineStyle: LightweightCharts.LineStyle.Dotted, lineWidth: 1,
      axisLabelVisible: false, title: "start",
    });
    chart.timeScale().fitContent();
    return { chart, equity, start };
  }

  const DRAW = { fan: drawFan, histogram: drawHistogram, curve: drawCurve };

  function draw() {
    const source = document.getElementById("robustness-charts-data");
    const drawn = {};
    for (const spec of source ? JSON.parse(source.textContent) : []) drawn[spec.id] = DRAW[spec.kind](spec);
    window.robustnessCharts = drawn;
  }

  // Deferred on the backtest page; in the head (the admin's form media) on the optimisation page.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
