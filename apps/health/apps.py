"""Health: the /api/health document, its per-minute history and external API probes."""

from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "apps.health"
    label = "health"
    verbose_name = "Health"

    def ready(self) -> None:
        from apps.health import metrics

        metrics.prime_cpu_counter()
