"""Routes of the health API (mounted under /api/)."""

from apps.core.api import api_path
from apps.health.api import views

urlpatterns = [
    api_path("health", views.HealthView.as_view(), name="health"),
    api_path("health/snapshots", views.SnapshotsView.as_view(), name="health-snapshots"),
    api_path(
        "health/snapshots/<int:snapshot_id>",
        views.SnapshotDetailView.as_view(),
        name="health-snapshot-detail",
    ),
]
