"""Django app configuration for trading."""

from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "apps.trading"
    label = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        from apps.core.ownership import change_guard_register
        from apps.core.sweeper import JobKind, job_kind_register
        from apps.strategies.models import Strategy
        from apps.trading.models import OrchestratorCycle, Reconciliation
        from apps.trading.selectors import live_trading_reason

        # The strategies app cannot see accounts: a strategy a live account trades is staff's to change.
        change_guard_register(model=Strategy, guard=live_trading_reason)

        # Not re-run when lost: the next cycle (every 5 minutes) and reconciliation (every minute)
        # redo what a lost one missed, on fresher data.
        job_kind_register(
            JobKind(
                model=OrchestratorCycle,
                task="trading.orchestrator_run",
                lost_reason="Lost with its worker; the next cycle acts on the candles this one missed.",
            )
        )
        job_kind_register(
            JobKind(
                model=Reconciliation,
                task="trading.account_reconcile",
                lost_reason="Lost with its worker; the next reconciliation repeats it.",
            )
        )
