"""Errors of the training app that callers translate: bad input (naming its field) and bad artifacts."""

from __future__ import annotations


class TrainingInputError(ValueError):
    """Input the training app cannot act on; ``fields`` maps each bad field to what is wrong with it."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in fields.items()))

    @classmethod
    def on(cls, field: str, problem: str) -> TrainingInputError:
        return cls({field: problem})


class ArtifactError(RuntimeError):
    """A stored model file that is missing or does not match its recorded sha256."""
