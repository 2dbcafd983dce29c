"""Unit tests of the pure learning code (apps.training.domain)."""
