"""Run every benchmark (`make bench`): each tests/bench/bench_*.py module prints its own table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main() -> int:
    names = sys.argv[1:] or sorted(path.stem for path in BENCH_DIR.glob("bench_*.py"))
    failed = []
    for name in names:
        print(f"\n## {name}\n", flush=True)
        result = subprocess.run([sys.executable, "-m", f"tests.bench.{name}"], cwd=BENCH_DIR.parents[1])
        if result.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that failed to run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
