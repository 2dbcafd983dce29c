"""HTTP API of the health app."""
