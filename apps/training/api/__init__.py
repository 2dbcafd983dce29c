"""HTTP API of the training app."""
