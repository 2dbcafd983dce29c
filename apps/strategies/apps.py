"""Django app configuration for strategies."""

from django.apps import AppConfig


class StrategiesConfig(AppConfig):
    name = "apps.strategies"
    label = "strategies"
    verbose_name = "Strategies"

    def ready(self) -> None:
        from apps.core import ownership
        from apps.core.sweeper import JobKind, job_kind_register
        from apps.strategies import models
        from apps.strategies.services.model_trials import LedgerForModels
        from apps.training.trial_ledger import model_trial_ledger_register

        for kind in (
            JobKind(model=models.Backtest, task="strategies.backtest_run"),
            JobKind(
                model=models.OptimizationChunk,
                task="strategies.optimize_chunk",
                args=lambda chunk: [chunk.run_id, chunk.index],
            ),
            JobKind(model=models.OptimizationRun, task="strategies.optimize_finish", children=("chunks",)),
            JobKind(model=models.GenerationRun, task="strategies.generate_run"),
            JobKind(model=models.StrategyUpdateItem, task="strategies.daily_update_strategy"),
            JobKind(
                model=models.StrategyUpdateRun,
                task="strategies.daily_update_advance",
                children=("items", "generation_runs"),
            ),
        ):
            job_kind_register(kind)
        for model in (models.Backtest, models.OptimizationRun, models.GenerationRun):
            ownership.queued_kind_register(model=model)
        ownership.research_permission_register(permission=models.RUN_GENERATION)
        model_trial_ledger_register(ledger=LedgerForModels())
