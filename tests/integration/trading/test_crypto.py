"""Exchange keys at rest: Fernet with FIELD_ENCRYPTION_KEY, rotation, and no derived key in production."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from apps.trading import crypto


def test_a_value_is_stored_as_ciphertext_and_read_back(settings):
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()

    token = crypto.encrypt("my-exchange-secret")

    assert "my-exchange-secret" not in token
    assert crypto.decrypt(token) == "my-exchange-secret"


def test_a_rotated_key_still_reads_what_the_old_key_wrote(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = old
    token = crypto.encrypt("secret")

    settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"

    assert crypto.decrypt(token) == "secret"
    assert Fernet(new.encode()).decrypt(crypto.encrypt("secret").encode()) == b"secret"  # the new key writes


def test_a_value_written_with_a_key_no_longer_configured_cannot_be_read(settings):
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    token = crypto.encrypt("secret")
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()

    with pytest.raises(crypto.DecryptionError, match="FIELD_ENCRYPTION_KEY"):
        crypto.decrypt(token)


def test_development_derives_a_key_and_production_refuses_to(settings):
    settings.FIELD_ENCRYPTION_KEY = ""

    assert crypto.decrypt(crypto.encrypt("dev")) == "dev"
    settings.IS_PRODUCTION = True
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY must be set"):
        crypto.encrypt("prod")


def test_a_malformed_key_is_a_configuration_error(settings):
    settings.FIELD_ENCRYPTION_KEY = "not-a-fernet-key"

    with pytest.raises(ImproperlyConfigured, match="Fernet keys"):
        crypto.encrypt("x")
