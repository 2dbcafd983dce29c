"""Latency of GET /api/health against a running gunicorn server with a worker (target: p99 < 100 ms)."""

from __future__ import annotations

import time

from tests.bench.server import measure, running_system, table

TARGET_MS = 100
REQUESTS = 500


def main() -> None:
    with running_system() as port:
        time.sleep(2)  # let the worker connect so its ping is answered, as in a running system
        measure(port, "/api/health", 20)  # warm-up: imports, first ping, connections
        result = measure(port, "/api/health", REQUESTS)
    verdict = "pass" if result["p99"] < TARGET_MS else "FAIL"
    print(
        table(
            [
                (
                    f"GET /api/health ({REQUESTS} requests)",
                    f"{result['median']:.1f}",
                    f"{result['p95']:.1f}",
                    f"{result['p99']:.1f}",
                    f"p99 < {TARGET_MS}",
                    verdict,
                )
            ],
            ("benchmark", "median ms", "p95 ms", "p99 ms", "target ms", "result"),
        )
    )


if __name__ == "__main__":
    main()
