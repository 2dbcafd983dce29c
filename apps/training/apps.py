"""Django app configuration for training."""

from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "apps.training"
    label = "training"
    verbose_name = "Training"

    def ready(self) -> None:
        from apps.core import ownership
        from apps.core.sweeper import JobKind, job_kind_register
        from apps.training.models import RUN_TRAINING, MLModel, TrainingRun

        job_kind_register(JobKind(model=MLModel, task="training.model_train"))
        job_kind_register(JobKind(model=TrainingRun, task="training.run"))
        ownership.queued_kind_register(model=MLModel)
        ownership.research_permission_register(permission=RUN_TRAINING)
