"""The replay: stored history played as live closed candles, bar by bar, on the replay clock.

A replay copies a stored candle series (the *source*: BTCUSD 1h on coinbase, shipped with the
project) into an instrument of its own (the *target*: the same symbol under another exchange id,
``replay`` by default), one bar at a time. For each bar it sets the market clock
(:mod:`apps.core.clock`) to the moment the bar closes, and runs on that moment, in this order:

1. the bar is stored through ``candles_store``, which refuses a bar that has not closed by then;
2. resting paper orders are matched against it;
3. the market analysis of the target, at most once per 30-minute slot (every bar on 1h);
4. training of the target series, each time a ``train_every`` boundary passes (00, 06, 12 and
   18 UTC for 6 hours, as scheduled);
5. the daily update of the target's active strategies each time an ``update_every`` boundary
   passes (02:00 UTC for 24 hours, as scheduled), then the generation of candidates where the
   market has too few active strategies or retired some that day;
6. an orchestrator cycle for the replay's account (and a second one on the same moment when a
   strategy waited for its model series: the next 5-minute cycle would act on the same candle);
7. a portfolio snapshot of the account and a performance record of each of its allocations.

**No look-ahead.** The target holds only the bars already played, and every job reads the target:
none can see a bar before the clock has passed its close.

**Its own market and account only.** The scheduled jobs each cover every market and account: an
analysis per active instrument, a training run per slot and an update run per day over all of
them, a cycle over every enabled allocation. Run on the replay clock they would analyse, train,
evaluate, retire and trade the other markets at a moment of the past with the data of its future.
The replay calls instead, for its own market and account, the functions those jobs are made of
(``analysis_request``/``analysis_run``, ``training_series_run``, ``strategy_daily_update`` with
``generation_create``/``generation_run``, ``orchestrator_run(account=...)``, ``portfolio_snapshot``,
``performance_record_all(account=...)``); no training run or update run row is made for it. The
target is inactive, so the scheduled jobs of a running system leave it alone.

**In this process, nothing through the broker.** Each job runs here, on the replay clock, as soon as
its row exists; no message is sent to a worker, which would run it on the wall clock. A replay
stopped mid-bar fails what it left unfinished, with the reason (:func:`replay_jobs_abandon`), so
that no sweeper sends it to a worker afterwards.

**Offline.** No candle is fetched, the analysis asks for no commentary and the generation uses the
offline templates: an LLM knows what happened after the moment replayed.

**Strategies** are copies, on the target, of stored strategies (the demo strategies by default):
a strategy trades the instrument it names, and the originals keep trading theirs. The replay's
paper account holds the target's quote currency, has auto-trading on and no order-rate limit
(a replay plays hours of orders in seconds of wall clock). Running again continues where the
replay stopped; :func:`replay_reset` deletes the target and the replay's accounts with everything
recorded about them, and nothing else.
"""
