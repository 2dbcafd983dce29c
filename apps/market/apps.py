"""Django app configuration for market."""

from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "apps.market"
    label = "market"
    verbose_name = "Market"

    def ready(self) -> None:
        from apps.core.sweeper import JobKind, job_kind_register
        from apps.market.models import MarketAnalysis

        job_kind_register(JobKind(model=MarketAnalysis, task="market.analysis_run"))
