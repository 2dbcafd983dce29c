"""Routes of the market API (mounted under /api/)."""

from apps.core.api import api_path
from apps.market.api import views

urlpatterns = [
    api_path("market/data", views.MarketDataView.as_view(), name="market-data"),
    api_path("market/data/indicators", views.IndicatorsView.as_view(), name="market-indicators"),
    api_path("market/data/patterns", views.PatternsView.as_view(), name="market-patterns"),
    api_path("market/instruments", views.InstrumentListView.as_view(), name="market-instruments"),
    api_path("market/analyses", views.AnalysisListView.as_view(), name="market-analyses"),
    api_path("market/analyses/<int:analysis_id>", views.AnalysisDetailView.as_view(), name="market-analysis"),
    api_path("market/signals", views.SignalListView.as_view(), name="market-signals"),
    api_path("market/events", views.EventListView.as_view(), name="market-events"),
]
