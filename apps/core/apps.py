"""Shared infrastructure: API conventions, job rows, logging and the api_token command."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"
