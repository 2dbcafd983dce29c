"""Training tasks: model training on the training queue and the 6-hourly retraining job."""

from __future__ import annotations

from celery import shared_task

from apps.training.services import model_training, training_runs
from workers.periodic import once_per_slot


@shared_task(name="training.model_train")
def model_train(model_pk: int) -> None:
    """Train a requested model; a redelivered message finds the job taken or done and does nothing."""
    model_training.model_train(model_pk=model_pk)


@shared_task(name="training.scheduled_run")
@once_per_slot
def scheduled_run() -> None:
    """Beat-driven (minute 0 of hours 0, 6, 12, 18 UTC); one run per 6-hour slot however often it arrives."""
    training_runs.training_run_for_slot()


@shared_task(name="training.run")
def run(run_id: int) -> None:
    """Run (or, sent by the sweeper, take over) one stored training run; a finished one does nothing."""
    training_runs.training_run(run_id=run_id)
