"""Let a user start costly work (LLM generation, training), or stop them: the researchers group."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.ownership import RESEARCHERS, researcher_set


class Command(BaseCommand):
    help = (
        f"Add USERNAME to the {RESEARCHERS!r} group, whose members may start strategy generation and "
        "training (staff always may); --remove takes them out."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--remove", action="store_true", help="take the user out of the group")

    def handle(self, *args: Any, username: str, remove: bool, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        researcher_set(user=user, member=not remove)
        verb = "is no longer" if remove else "is now"
        self.stdout.write(f"{username} {verb} in the {RESEARCHERS!r} group.")
