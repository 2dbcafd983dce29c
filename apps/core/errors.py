"""The project's own exceptions: third-party errors are translated into these at the edge."""


class TemporaryError(Exception):
    """A failure that may pass if retried later (timeouts, rate limits, 5xx answers)."""


class PermanentError(Exception):
    """A failure that retrying cannot fix (bad input, authentication, malformed answers)."""
