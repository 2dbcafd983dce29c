"""Routes of the training API (mounted under /api/)."""

urlpatterns: list = []
