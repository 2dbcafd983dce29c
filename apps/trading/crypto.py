"""Encryption at rest of exchange keys: Fernet with keys from ``FIELD_ENCRYPTION_KEY``.

``FIELD_ENCRYPTION_KEY`` holds one or more Fernet keys separated by commas; the first encrypts,
all of them decrypt, so a key can be rotated by putting the new one first. Outside production an
unset key falls back to one derived from ``SECRET_KEY`` (development data only); production never
derives one: encrypting or decrypting without the variable raises ``ImproperlyConfigured``.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(ValueError):
    """A stored value that no configured key decrypts (the key changed, or the value is corrupt)."""


def encrypt(plaintext: str) -> str:
    return (
        _cipher(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY, settings.IS_PRODUCTION)
        .encrypt(plaintext.encode())
        .decode()
    )


def decrypt(token: str) -> str:
    """The plaintext of ``token``; an empty token is an empty value."""
    if not token:
        return ""
    cipher = _cipher(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY, settings.IS_PRODUCTION)
    try:
        return cipher.decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "a stored exchange key cannot be decrypted with FIELD_ENCRYPTION_KEY (was the key changed "
            "without keeping the old one after the new one?)"
        ) from None


def generate_key() -> str:
    """A new random key for ``FIELD_ENCRYPTION_KEY``."""
    return Fernet.generate_key().decode()


@cache
def _cipher(keys: str, secret_key: str, is_production: bool) -> MultiFernet:
    names = [key.strip() for key in keys.split(",") if key.strip()]
    if not names:
        if is_production:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEY must be set to store exchange keys in production"
            )
        derived = hashlib.sha256(f"field-encryption:{secret_key}".encode()).digest()
        names = [base64.urlsafe_b64encode(derived).decode()]
    try:
        return MultiFernet([Fernet(name) for name in names])
    except ValueError:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes), separated by "
            "commas; make one with: python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from None
