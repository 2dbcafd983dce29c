"""Research honesty: statistics that deflate a backtest's winner for the search that found it."""
