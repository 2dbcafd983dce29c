"""Routes of the strategies API (mounted under /api/)."""

urlpatterns: list = []
