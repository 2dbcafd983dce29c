"""Unit tests of the pure strategy engine."""
