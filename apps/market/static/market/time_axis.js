/* One way to write times on every admin chart: ISO dates in UTC, never month names.
 *
 * Lightweight Charts picks a tick's kind (year, month, day, time) from the boundary it falls on and
 * by default writes them differently ("2019", "Oct", "17", "12:00"). Here a day-or-longer tick is
 * "2019-10-17" and an intraday one "10-17 12:00", and the crosshair reads "2019-10-17 12:00 UTC".
 * Times are UTC epoch seconds, as the admin's chart data gives them.
 */
(function () {
  "use strict";

  const TIME = 3; // TickMarkType.Time; TimeWithSeconds is 4, Year/Month/DayOfMonth are 0-2

  function iso(seconds) {
    return new Date(seconds * 1000).toISOString(); // "2019-10-17T12:00:00.000Z"
  }

  function tickMark(seconds, type) {
    const text = iso(seconds);
    return type >= TIME ? `${text.slice(5, 10)} ${text.slice(11, 16)}` : text.slice(0, 10);
  }

  function crosshair(seconds) {
    const text = iso(seconds);
    return `${text.slice(0, 10)} ${text.slice(11, 16)} UTC`;
  }

  // Options to merge into createChart's: the formatters and a time scale that shows hours.
  window.adminTimeAxis = {
    options: {
      localization: { timeFormatter: crosshair },
      timeScale: { timeVisible: true, secondsVisible: false, tickMarkFormatter: tickMark },
    },
    tickMark,
    crosshair,
  };
})();
