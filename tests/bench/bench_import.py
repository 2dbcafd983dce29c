"""Benchmark: `import_candles` end to end, rows per second on 1M rows and peak memory on a 100 MB file.

Run from the repository root: ``python -m tests.bench.bench_import``. It always measures SQLite (a
scratch file); with ``DATABASE_URL`` pointing at PostgreSQL it also measures PostgreSQL, in a
scratch database it creates on that server and drops afterwards. Each import runs in its own
process (``manage.py``'s command through ``call_command``, after ``django.setup()``), so the time
is the command's own (parsing, validation, writing, the series row, the report) and the peak is
that process's maximum resident set size; its growth over the resident size before the command
(Django, pandas and numpy loaded) is what the import itself took.

The files are synthetic 1-minute candles written with full float precision (about 100 bytes a
row, like an exchange export of computed prices). Targets: 200k rows/s for the first import of
1M rows (issue 14), and a peak well under the file's size plus a fixed amount (issue 13): the
growth must stay under half the file's size (the file is read 2 MiB at a time, so the growth does
not depend on its size).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path

from tests.bench.bench_market import INGEST_TARGET, synthetic_candles
from tests.bench.server import REPO_ROOT, scratch_database, table

ROWS = 1_000_000
MEMORY_FILE_BYTES = 100_000_000
# Measured with this script on the import before streaming (the whole file read into Python lists,
# an executemany of one-row INSERTs on SQLite, the report reading every stored open time back), on
# 2 shared cores with a load of about 5.
BEFORE = {
    "SQLite": {"rate": 89_487, "again_rate": 89_310, "peak_mb": 1608, "growth_mb": 1218},
    "PostgreSQL": {"rate": 64_919, "again_rate": 65_347, "peak_mb": 1607, "growth_mb": 1218},
}
_WRITE_CHUNK = 100_000  # rows formatted at a time by pandas


def write_csv(path: Path, rows: int) -> None:
    """Write ``rows`` synthetic 1m candles to ``path`` in the import's CSV layout."""
    frame = synthetic_candles(rows, seed=7)
    frame.index = frame.index.as_unit("ms").asi8
    frame.to_csv(path, index_label="timestamp", float_format="%.17g", chunksize=_WRITE_CHUNK)


def _child(path: str, symbol: str) -> None:
    """In a fresh process: import ``path`` and print the time and the memory as JSON."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = StringIO()
    started = time.perf_counter()
    call_command(
        "import_candles", path, "--symbol", symbol, "--timeframe", "1m", "--exchange", "bench", stdout=out
    )
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"seconds": seconds, "before_mb": before_mb, "peak_mb": peak_mb, "report": out.getvalue()})
    )


Result = dict[str, float | str]


def _import(env: dict[str, str], path: Path, symbol: str) -> Result:
    child = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_import", "--child", str(path), symbol],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if child.returncode != 0:
        raise RuntimeError(child.stderr[-3000:])
    result: Result = json.loads(child.stdout.strip().splitlines()[-1])
    return result


@contextmanager
def _databases(scratch: Path) -> Iterator[list[tuple[str, str]]]:
    """(label, DATABASE_URL) of each database to measure, created empty and removed afterwards."""
    found = [("SQLite", f"sqlite:///{scratch / 'bench.sqlite3'}")]
    with scratch_database("import") as url:
        yield found + ([("PostgreSQL", url)] if url else [])


def _rows(label: str, first: Result, again: Result, memory: Result, file_mb: float) -> list[tuple[str, ...]]:
    before = BEFORE[label]
    rate, again_rate = ROWS / float(first["seconds"]), ROWS / float(again["seconds"])
    growth = float(memory["peak_mb"]) - float(memory["before_mb"])
    return [
        (
            f"{label}: import {ROWS:,} new rows",
            f"{before['rate']:,.0f} rows/s",
            f"{rate:,.0f} rows/s ({first['seconds']:.2f} s)",
            f"≥ {INGEST_TARGET:,} rows/s",
            "pass" if rate >= INGEST_TARGET else "FAIL",
        ),
        (
            f"{label}: import the same {ROWS:,} again (all unchanged)",
            f"{before['again_rate']:,.0f} rows/s",
            f"{again_rate:,.0f} rows/s ({again['seconds']:.2f} s)",
            "",
            "",
        ),
        (
            f"{label}: peak memory importing a {file_mb:.0f} MB file",
            f"{before['peak_mb']:,.0f} MB (+{before['growth_mb']:,.0f})",
            f"{memory['peak_mb']:.0f} MB (+{growth:.0f})",
            f"growth < {file_mb / 2:.0f} MB (half the file)",
            "pass" if growth < file_mb / 2 else "FAIL",
        ),
    ]


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], sys.argv[3])
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-import-") as scratch_dir:
        scratch = Path(scratch_dir)
        million, big = scratch / "million.csv", scratch / "big.csv"
        write_csv(million, ROWS)
        million_mb = million.stat().st_size / 1e6
        write_csv(big, int(MEMORY_FILE_BYTES / (million.stat().st_size / ROWS)))
        with _databases(scratch) as databases:
            for label, url in databases:
                env = {**os.environ, "DATABASE_URL": url, "VAR_DIR": scratch_dir, "LOG_LEVEL": "WARNING"}
                env["ENVIRONMENT"] = "development"
                subprocess.run(
                    [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
                    cwd=REPO_ROOT,
                    env=env,
                    check=True,
                )
                first = _import(env, million, "BENCHUSDT")
                again = _import(env, million, "BENCHUSDT")
                memory = _import(env, big, "MEMUSDT")
                rows += _rows(label, first, again, memory, big.stat().st_size / 1e6)
    print(f"{ROWS:,} rows are {million_mb:.0f} MB of CSV; peak memory is the importing process's, its")
    print("growth what it added to Django, pandas and numpy loaded (about 390 MB).")
    print(table(rows, ("benchmark", "before", "now", "target", "result")))


if __name__ == "__main__":
    main()
