"""Shared infrastructure every app builds on: API conventions, job state rows, logging."""
