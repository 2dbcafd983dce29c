"""The development settings as a fresh process sees them: for tests of values read at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def fresh_settings(
    printed: dict[str, str], without: Iterable[str], **env: str
) -> subprocess.CompletedProcess:
    """Start a process with ``env`` (and none of the variables ``without``) that prints, as JSON, each
    setting of ``printed`` (key -> setting name); a refused value ends it non-zero with its message."""
    fields = ", ".join(f"{key!r}: settings.{name}" for key, name in printed.items())
    script = f"import json; from django.conf import settings; print(json.dumps({{{fields}}}))"
    clean = {k: v for k, v in os.environ.items() if k not in {*without, "DJANGO_SETTINGS_MODULE"}}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "tradingsite.settings", "ENVIRONMENT": "development", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
