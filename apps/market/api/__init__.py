"""HTTP API of the market app."""
