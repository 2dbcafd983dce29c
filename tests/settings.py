"""Settings for the test suite: the project's own, with ENVIRONMENT=test and fast password hashing."""

import os

os.environ.setdefault("ENVIRONMENT", "test")
os.environ.setdefault("TEST_RUN_ID", str(os.getpid()))  # shared with the worker processes tests start
if _xdist_worker := os.environ.get("PYTEST_XDIST_WORKER"):
    # Each pytest-xdist worker is a test run of its own (database, cache keys, broker keys).
    os.environ["TEST_RUN_ID"] = f"{os.environ['TEST_RUN_ID'].split('_')[0]}_{_xdist_worker}"

from tradingsite.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
