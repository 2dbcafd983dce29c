"""Routes of the strategies API (mounted under /api/); fixed paths come before ``<strategy_id>``."""

from apps.core.api import api_path
from apps.strategies.api import views

urlpatterns = [
    api_path("strategies", views.StrategiesView.as_view(), name="strategies"),
    api_path("strategies/backtest", views.BacktestCreateView.as_view(), name="strategies-backtest"),
    api_path("strategies/backtests", views.BacktestListView.as_view(), name="strategies-backtests"),
    api_path(
        "strategies/backtests/<int:backtest_id>",
        views.BacktestDetailView.as_view(),
        name="strategies-backtest-detail",
    ),
    api_path(
        "strategies/backtests/<int:backtest_id>/cancel",
        views.BacktestCancelView.as_view(),
        name="strategies-backtest-cancel",
    ),
    api_path("strategies/optimize", views.OptimizeView.as_view(), name="strategies-optimize"),
    api_path(
        "strategies/optimizations", views.OptimizationListView.as_view(), name="strategies-optimizations"
    ),
    api_path(
        "strategies/optimizations/<int:run_id>",
        views.OptimizationDetailView.as_view(),
        name="strategies-optimization-detail",
    ),
    api_path(
        "strategies/optimizations/<int:run_id>/cancel",
        views.OptimizationCancelView.as_view(),
        name="strategies-optimization-cancel",
    ),
    api_path("strategies/generate", views.GenerateView.as_view(), name="strategies-generate"),
    api_path("strategies/generations", views.GenerationListView.as_view(), name="strategies-generations"),
    api_path(
        "strategies/generations/<int:run_id>",
        views.GenerationDetailView.as_view(),
        name="strategies-generation-detail",
    ),
    api_path(
        "strategies/generations/<int:run_id>/cancel",
        views.GenerationCancelView.as_view(),
        name="strategies-generation-cancel",
    ),
    api_path("strategies/updates", views.UpdateRunListView.as_view(), name="strategies-updates"),
    api_path(
        "strategies/updates/<int:run_id>", views.UpdateRunDetailView.as_view(), name="strategies-update"
    ),
    api_path(
        "strategies/<strategy_id>/versions", views.VersionListView.as_view(), name="strategies-versions"
    ),
    api_path(
        "strategies/<strategy_id>/decisions", views.DecisionListView.as_view(), name="strategies-decisions"
    ),
    api_path("strategies/<strategy_id>/trials", views.TrialListView.as_view(), name="strategies-trials"),
    api_path("strategies/<strategy_id>", views.StrategyDetailView.as_view(), name="strategies-detail"),
]
