"""Sync the periodic jobs declared in workers/schedules.py into the database scheduler."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from workers.schedules import sync_schedules


class Command(BaseCommand):
    help = "Create the declared periodic jobs that are missing; --reset restores edited ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset", action="store_true", help="overwrite admin edits with the declarations"
        )

    def handle(self, *args: Any, reset: bool, **options: Any) -> None:
        for name, outcome in sync_schedules(reset=reset).items():
            self.stdout.write(f"{outcome:8} {name}")
