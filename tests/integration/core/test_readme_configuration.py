"""The README's configuration tables say what the code does: every environment variable the settings
read is documented there, and every default the README gives is the one a fresh process gets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()
SETTINGS = (ROOT / "tradingsite" / "settings.py").read_text()

# Read by the settings, but not for users to set: documented where they matter, not in the tables.
INTERNAL = {
    "TEST_RUN_ID": "names one test run's database and broker keys; the test runner sets it",
}

# Every default of a fresh process: the settings module imported with an empty environment, each
# variable's value recorded as django-environ hands it to the settings.
_RECORD = """
import json, environ
seen = {}
get_value = environ.Env.get_value
def record(self, var, *args, **kwargs):
    value = get_value(self, var, *args, **kwargs)
    seen.setdefault(var, value)
    return value
environ.Env.get_value = record
import tradingsite.settings as s
database = s.DATABASES["default"]
effective = {"SECRET_KEY": s.SECRET_KEY, "LLM_PROVIDERS": s.LLM_PROVIDERS,
             "DATABASE": database["ENGINE"], "DATABASE_NAME": str(database["NAME"]),
             "CACHE": s.CACHES["default"]["BACKEND"], "BROKER": s.CELERY_BROKER_URL,
             "BASE_DIR": str(s.BASE_DIR)}
print(json.dumps({"env": seen, "effective": effective}, default=str))
"""


def _fresh_process(**environment: str) -> dict[str, Any]:
    environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), **environment}
    done = subprocess.run(
        [sys.executable, "-c", _RECORD], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fresh() -> dict[str, Any]:
    """A fresh process's defaults, and (``conditional``) those read only in production or with a
    PostgreSQL database and Redis named (nothing is connected to: the settings are only imported)."""
    found = _fresh_process()
    found["conditional"] = _fresh_process(
        ENVIRONMENT="production",
        SECRET_KEY="x" * 50,
        ALLOWED_HOSTS="trading.example.com",
        DATABASE_URL="postgresql://user@db.example.com:5432/trading",
        REDIS_URL="redis://cache.example.com:6379/0",
    )["env"]
    return found


def _variables_read() -> set[str]:
    """Every variable named in the settings module: read through django-environ or a helper."""
    readers = r"(?:env\.\w+|env|_required_in_production)"
    return set(re.findall(readers + r'\(\s*"([A-Z][A-Z0-9_]+)"', SETTINGS))


def _configuration_rows() -> list[tuple[list[str], str]]:
    """(variables, default cell) of each table row of the README's Configuration section."""
    section = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 3:
            rows.append((re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]), cells[1]))
    return rows


def _same(readme: str, actual: Any, base_dir: str) -> bool:
    if isinstance(actual, bool):
        return readme == str(actual).lower()
    if isinstance(actual, list):
        return readme == ",".join(str(item) for item in actual)
    if isinstance(actual, dict):
        return readme == ",".join(f"{key}={value}" for key, value in actual.items())
    if isinstance(actual, str) and actual.startswith(base_dir):
        return readme.rstrip("/") == actual[len(base_dir) :].strip("/")
    try:
        return float(readme.replace(",", "")) == float(actual)
    except (TypeError, ValueError):
        return readme == str(actual)


# Defaults the README states in words, and what each must mean in a fresh process.
PROSE = {
    "SECRET_KEY": lambda fresh: not fresh["env"]["SECRET_KEY"] and len(fresh["effective"]["SECRET_KEY"]) > 20,
    "DATABASE_URL": lambda fresh: (
        fresh["effective"]["DATABASE"].endswith("sqlite3")
        and fresh["effective"]["DATABASE_NAME"].endswith("var/db.sqlite3")
    ),
    "REDIS_URL": lambda fresh: (
        fresh["effective"]["BROKER"].startswith("filesystem://")
        and fresh["effective"]["CACHE"].endswith("LocMemCache")
    ),
    "FIELD_ENCRYPTION_KEY": lambda fresh: fresh["env"]["FIELD_ENCRYPTION_KEY"] == "",
    "LLM_PROVIDERS": lambda fresh: (
        fresh["effective"]["LLM_PROVIDERS"] == ["offline"]
        and fresh["env"]["LLM_PROVIDERS"] == ["openai", "anthropic", "gemini"]
    ),
    "CELERY_BROKER_URL": lambda fresh: fresh["effective"]["BROKER"].startswith("filesystem://"),
    "LOG_FORMAT": lambda fresh: fresh["env"]["LOG_FORMAT"] == "text",
}
_EMPTY = ("empty", "none")


def test_every_variable_the_settings_read_is_in_a_configuration_table():
    documented = {name for names, _ in _configuration_rows() for name in names}

    missing = _variables_read() - documented - set(INTERNAL)

    assert not missing, f"not in the README's configuration tables: {sorted(missing)}"


def test_every_variable_in_the_tables_is_read_by_the_settings():
    documented = {name for names, _ in _configuration_rows() for name in names}

    assert documented <= _variables_read(), sorted(documented - _variables_read())


def test_every_default_in_the_tables_is_the_one_a_fresh_process_gets(fresh):
    checked, wrong = 0, []
    for names, cell in _configuration_rows():
        # "production: `true`" or "with `REDIS_URL`: `trading`": read only there; "(… in production)"
        # notes the other environment's default.
        condition = re.match(r"(production|with `([A-Z_]+)`): ", cell)
        plain = re.sub(r" \([^)]*\)$", "", cell[condition.end() :] if condition else cell)
        values = re.findall(r"`([^`]*)`", plain)
        literal = re.fullmatch(r"`[^`]*`(, `[^`]*`)*", plain) is not None and len(values) == len(names)
        for index, name in enumerate(names):
            known = fresh["conditional" if condition else "env"]
            assert name in known, f"{name}: not read where its default cell says ({cell!r})"
            actual = known[name]
            if literal:
                ok = _same(values[index], actual, fresh["effective"]["BASE_DIR"])
            elif cell.split(":")[0].strip() in _EMPTY:
                ok = actual in ("", [], {}) or (name in PROSE and PROSE[name](fresh))
            else:
                ok = name in PROSE and PROSE[name](fresh)
            checked += 1
            if not ok:
                wrong.append(f"{name}: README says {cell!r}, a fresh process gets {actual!r}")
    assert not wrong, "\n".join(wrong)
    assert checked >= len(_variables_read()) - len(INTERNAL) - 5


def test_defaults_named_in_the_text_are_the_code_s(fresh):
    """``NAME`` (value) anywhere in the README, e.g. "`AXES_FAILURE_LIMIT` (5)"."""
    mentions = re.findall(r"`([A-Z][A-Z0-9_]+)` \(([0-9][^)]*)\)", README)
    base_dir = fresh["effective"]["BASE_DIR"]
    wrong = [
        f"{name} ({value})"
        for name, value in mentions
        if name in fresh["env"] and not _same(value.split()[0], fresh["env"][name], base_dir)
    ]

    assert mentions and not wrong, wrong
