"""Strategy tasks: backtests, optimisation chunks and the daily strategy update."""
