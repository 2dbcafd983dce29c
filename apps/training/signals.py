"""Signals other apps subscribe to: the training app announces, it never calls them (it sits below them)."""

from django.dispatch import Signal

# Sent after the transaction that made a new champion commits, with keyword arguments ``champion``
# (the new MLModel), ``retired`` (the previous champion or None) and ``update`` (its MLSignalUpdate,
# from ``services.ml_signal``: the parameter changes for ml_signal strategies on that series).
champion_promoted = Signal()
