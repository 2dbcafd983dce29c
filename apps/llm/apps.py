"""The llm app: LLM providers behind one interface, and the record of every call."""

from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "apps.llm"
    label = "llm"
    verbose_name = "LLM"
