"""Health: the /api/health document, its per-minute history and external API probes."""

from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "apps.health"
    label = "health"
    verbose_name = "Health"

    def ready(self) -> None:
        from apps.core.sweeper import JobKind, job_kind_register
        from apps.health import metrics
        from apps.health.models import HealthSnapshot

        metrics.prime_cpu_counter()
        job_kind_register(JobKind(model=HealthSnapshot, task="health.snapshot_run"))
