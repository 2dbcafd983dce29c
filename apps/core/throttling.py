"""Rate limits that act before authentication fails: anonymous callers per address, logins per
username and address (django-axes).

DRF checks throttles only after authentication and permissions, so a request without credentials is
refused (401) before any throttle counts it, and a password guesser is never slowed. The anonymous
limit therefore runs as the last authenticator (every request no other authenticator recognised),
and the login view's Basic authentication asks django-axes first whether the username or the
address is locked out.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.contrib.auth.models import AbstractBaseUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, BasicAuthentication
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class _AddressThrottle(SimpleRateThrottle):
    """The ``anon`` rate, per client address (it cannot read ``request.user``: it runs while that is
    being worked out)."""

    scope = "anon"

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AnonymousRateLimit(BaseAuthentication):
    """The last authenticator: counts a request that no authenticator recognised against its address's
    ``anon`` rate, and answers 429 past it, whatever the permission check would have said."""

    def authenticate(self, request: Request) -> None:
        throttle = _AddressThrottle()
        if not throttle.allow_request(request, None):
            raise exceptions.Throttled(wait=throttle.wait())
        return None


class LockedOut(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"
    default_detail = "Too many failed logins for this username or from this address."


class LockoutBasicAuthentication(BasicAuthentication):
    """HTTP Basic for the login view, refused with 429 while django-axes has the username or the
    address locked out (each failure is counted by axes through Django's ``user_login_failed``)."""

    def authenticate_credentials(
        self, userid: str, password: str, request: Request | None = None
    ) -> tuple[AbstractBaseUser, None]:
        if request is not None and not AxesProxyHandler.is_allowed(request, {"username": userid}):
            cool_off = get_cool_off(request)
            wait = f" Try again in {int(cool_off.total_seconds() // 60)} minutes." if cool_off else ""
            raise LockedOut(f"{LockedOut.default_detail}{wait}")
        return super().authenticate_credentials(userid, password, request)


class LockoutBasicScheme(OpenApiAuthenticationExtension):
    """In the API schema the login's authentication is plain HTTP Basic."""

    target_class = LockoutBasicAuthentication
    name = "basicAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "basic"}
