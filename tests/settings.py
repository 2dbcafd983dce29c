"""Settings for the test suite: the project's own, with ENVIRONMENT=test and fast password hashing."""

import os

os.environ.setdefault("ENVIRONMENT", "test")
os.environ.setdefault("TEST_RUN_ID", str(os.getpid()))  # shared with the worker processes tests start

from tradingsite.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
