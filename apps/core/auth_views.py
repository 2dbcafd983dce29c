"""Token login and logout (knox: tokens are stored hashed and can expire); failed logins lock the
username and the address out for a while (django-axes)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from knox import views as knox_views
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication

from apps.core.throttling import LockoutBasicAuthentication
from apps.core.tokens import TokenAuthentication

TokenSerializer = inline_serializer(
    "Token", {"token": serializers.CharField(), "expiry": serializers.DateTimeField(allow_null=True)}
)


@extend_schema(
    request=None, responses={200: TokenSerializer}, summary="Exchange HTTP Basic credentials for a token"
)
class LoginView(knox_views.LoginView):
    authentication_classes = (LockoutBasicAuthentication, SessionAuthentication)


@extend_schema(request=None, responses={204: None}, summary="Revoke the token used for this request")
class LogoutView(knox_views.LogoutView):
    authentication_classes = (TokenAuthentication,)
