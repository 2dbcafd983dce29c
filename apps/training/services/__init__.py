"""Writes of the training app, one module per use case.

``model_training`` (a training request checked against the stored data, its model registered, then
trained as a job), ``promotion`` (a candidate promoted over its champion only when a paired test on a
shared holdout finds it better and its deflated Sharpe ratio passes, and retirement), ``ml_signal``
(the parameters ml_signal strategies take from a new champion) and ``training_runs`` (the 6-hourly
run: fetch, train and promote for every active series).

Bad input raises :class:`apps.training.errors.TrainingInputError` naming each field, and nothing
is stored. Jobs claim their row first (``apps.core.jobs``), so a redelivered task does nothing twice.
"""
