"""Create the admin user on first run and print its login and a fresh API token."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from knox.models import AuthToken


class Command(BaseCommand):
    help = "Create a superuser (once) and print its login and a new API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = user_model.objects.create_superuser(username=username, email="", password=password)
            login = (
                f"{username} / {password}   (shown once; change it with: manage.py changepassword {username})"
            )
        else:
            login = (
                f"{username} (exists; password unchanged — reset with: manage.py changepassword {username})"
            )
        _, token = AuthToken.objects.create(user=user)
        self.stdout.write(f"Admin login:  {login}")
        self.stdout.write(f"API token:    {token}")
        self.stdout.write(
            f"Try it:       curl -H 'Authorization: Token {token}' http://{settings.WEB_BIND}/api/health/snapshots"
        )
