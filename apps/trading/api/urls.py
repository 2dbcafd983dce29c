"""Routes of the trading API (mounted under /api/)."""

from apps.core.api import api_path
from apps.trading.api import views

urlpatterns = [
    api_path("trading/trades", views.TradesView.as_view(), name="trading-trades"),
    api_path("trading/trades/<int:order_id>", views.TradeDetailView.as_view(), name="trading-trade"),
    api_path(
        "trading/trades/<int:order_id>/cancel", views.TradeCancelView.as_view(), name="trading-trade-cancel"
    ),
    api_path("trading/positions", views.PositionsView.as_view(), name="trading-positions"),
    api_path("trading/portfolio", views.PortfolioView.as_view(), name="trading-portfolio"),
    api_path(
        "trading/portfolio/history", views.PortfolioHistoryView.as_view(), name="trading-portfolio-history"
    ),
    api_path("trading/accounts", views.AccountsView.as_view(), name="trading-accounts"),
    api_path("trading/accounts/<int:account_id>", views.AccountDetailView.as_view(), name="trading-account"),
    api_path(
        "trading/accounts/<int:account_id>/halt", views.AccountHaltView.as_view(), name="trading-account-halt"
    ),
    api_path(
        "trading/accounts/<int:account_id>/resume",
        views.AccountResumeView.as_view(),
        name="trading-account-resume",
    ),
    api_path("trading/allocations", views.AllocationsView.as_view(), name="trading-allocations"),
    api_path(
        "trading/allocations/<int:allocation_id>",
        views.AllocationDetailView.as_view(),
        name="trading-allocation",
    ),
    api_path("trading/cycles", views.CyclesView.as_view(), name="trading-cycles"),
    api_path("trading/cycles/<int:cycle_id>", views.CycleDetailView.as_view(), name="trading-cycle"),
    api_path("trading/actions", views.ActionsView.as_view(), name="trading-actions"),
    api_path("trading/performance", views.PerformanceView.as_view(), name="trading-performance"),
]
