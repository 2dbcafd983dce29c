"""API token authentication in one query per request, and the daily deletion of expired tokens."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.models import AuthToken


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's token authentication, except for its clean-up on every request.

    knox reads every token of the caller on each request to delete the expired ones: a second query
    per request, growing with the caller's tokens, and a write from a GET. Here an expired token is
    only refused (401, as knox answers); :func:`tokens_expired_delete` deletes them once a day.
    """

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        return auth_token.expiry is not None and auth_token.expiry < timezone.now()


def tokens_expired_delete() -> int:
    """Delete every API token past its expiry; returns how many."""
    deleted, _ = AuthToken.objects.filter(expiry__lt=timezone.now()).delete()
    return deleted


class TokenScheme(KnoxTokenScheme):
    """In the API schema these tokens are knox's (extensions match their exact class only)."""

    target_class = TokenAuthentication
