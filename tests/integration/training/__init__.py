"""Integration tests of the training app: registry, API, worker, promotion, scheduled runs, ML series."""
