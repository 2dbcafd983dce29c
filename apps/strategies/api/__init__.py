"""HTTP API of the strategies app."""
