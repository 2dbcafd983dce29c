/* The admin's backtest equity chart: the strategy's equity and buy-and-hold over the same bars.
 *
 * Reads the points the page embeds (epoch seconds, account value) and draws them with TradingView
 * Lightweight Charts, vendored by the market app (no network needed).
 */
(function () {
  "use strict";

  const data = JSON.parse(document.getElementById("equity-data").textContent);
  const container = document.getElementById("equity-chart");
  const style = getComputedStyle(document.documentElement);
  const chart = LightweightCharts.createChart(container, {
    autoSize: true,
    layout: {
      background: { color: style.getPropertyValue("--body-bg").trim() || "#fff" },
      textColor: style.getPropertyValue("--body-fg").trim() || "#333",
    },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  chart.addLineSeries({ color: "#2962ff", lineWidth: 2, priceLineVisible: false }).setData(data.strategy);
  chart.addLineSeries({ color: "#ff6d00", lineWidth: 1, priceLineVisible: false }).setData(data.buyAndHold);
  chart.timeScale().fitContent();
})();
