"""URL configuration: the admin, and the API under /api/ (health, auth, schema and the apps)."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from apps.core.api import api_not_found, api_path
from apps.core.auth_views import LoginView, LogoutView


class SchemaView(SpectacularAPIView):
    permission_classes = (AllowAny,)
    authentication_classes = ()


class DocsView(SpectacularSwaggerView):
    permission_classes = (AllowAny,)
    authentication_classes = ()


api_patterns = [
    path("", include("apps.health.api.urls")),
    path("", include("apps.market.api.urls")),
    path("", include("apps.training.api.urls")),
    path("", include("apps.strategies.api.urls")),
    path("", include("apps.trading.api.urls")),
    api_path("auth/login", LoginView.as_view(), name="auth-login"),
    api_path("auth/logout", LogoutView.as_view(), name="auth-logout"),
    api_path("schema", SchemaView.as_view(), name="schema"),
    api_path("docs", DocsView.as_view(url_name="schema"), name="docs"),
    re_path(r"^.*$", api_not_found),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
]
