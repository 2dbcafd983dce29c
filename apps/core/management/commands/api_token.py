"""Print a new API token for a user (and nothing else on stdout), so scripts can use the API."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from knox.models import AuthToken


class Command(BaseCommand):
    help = "Print a new API token for USERNAME; --create makes the user if it does not exist."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--create", action="store_true", help="create the user when missing")
        parser.add_argument("--staff", action="store_true", help="with --create: make the user staff")

    def handle(self, *args: Any, username: str, create: bool, staff: bool, **options: Any) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None and not create:
            raise CommandError(f"No user {username!r}; pass --create to make one.")
        if user is None:
            user = user_model.objects.create_user(username=username, is_staff=staff)
            self.stderr.write(f"Created user {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive.")
        _, token = AuthToken.objects.create(user=user)
        self.stdout.write(token)
