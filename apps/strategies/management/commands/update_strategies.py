"""Run today's daily strategy update now, in this process: `update_strategies [--date YYYY-MM-DD]`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.strategies.services.daily_update import strategies_daily_update


class Command(BaseCommand):
    help = (
        "Evaluate, retire or re-optimise every active strategy and generate candidates where a market "
        "needs them, as the 02:00 UTC job does. One update per date: a date already updated is refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", help="the UTC date to record the update under (default: today)")

    def handle(self, *args: Any, date: str | None, **options: Any) -> None:
        now = timezone.now()
        if date:
            try:
                now = datetime.fromisoformat(date).replace(hour=now.hour, minute=now.minute, tzinfo=UTC)
            except ValueError:
                raise CommandError(f"--date must be YYYY-MM-DD, got {date!r}") from None
        run = strategies_daily_update(now=now)
        if run is None:
            raise CommandError(
                f"the update of {now:%Y-%m-%d} already exists; see the admin's strategy updates"
            )
        self.stdout.write(f"Strategy update of {run.date}: {run.status}")
        self.stdout.write(json.dumps(run.summary, indent=2, default=str))
