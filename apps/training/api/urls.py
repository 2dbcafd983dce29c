"""Routes of the training API (mounted under /api/)."""

from apps.core.api import api_path
from apps.training.api import views

urlpatterns = [
    api_path("training/train", views.TrainView.as_view(), name="training-train"),
    api_path("training/models", views.ModelListView.as_view(), name="training-models"),
    api_path("training/runs", views.TrainingRunListView.as_view(), name="training-runs"),
    api_path("training/runs/<int:run_id>", views.TrainingRunDetailView.as_view(), name="training-run"),
    # Before the detail route, which would otherwise take "evaluate" for a model id.
    api_path("training/models/evaluate", views.EvaluateView.as_view(), name="training-evaluate"),
    api_path("training/models/<model_id>", views.ModelDetailView.as_view(), name="training-model-detail"),
    api_path("training/models/<model_id>/predict", views.PredictView.as_view(), name="training-predict"),
    api_path(
        "training/models/<model_id>/promote", views.ModelPromoteView.as_view(), name="training-model-promote"
    ),
    api_path(
        "training/models/<model_id>/cancel", views.ModelCancelView.as_view(), name="training-model-cancel"
    ),
]
