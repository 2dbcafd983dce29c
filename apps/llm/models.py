"""The record of every LLM call: what was asked (by hash), of whom, what it cost and what came back."""

from __future__ import annotations

from django.db import models

OFFLINE = "offline"


class LLMCallStatus(models.TextChoices):
    OK = "ok", "OK"
    INVALID_OUTPUT = "invalid_output", "Invalid output"
    REPAIRED = "repaired", "Repaired"
    ERROR = "error", "Error"
    BUDGET_EXCEEDED = "budget_exceeded", "Budget exceeded"
    CACHED = "cached", "Cached"
    # A request's largest cost held in the day's budget while it is in flight; replaced by its outcome.
    RESERVED = "reserved", "Reserved"


# Answers that were accepted: the cache serves only these.
ACCEPTED_STATUSES = (LLMCallStatus.OK, LLMCallStatus.REPAIRED)


class LLMCall(models.Model):
    """One request to a provider (each retry and repair is its own row), or one refused or cached one.

    Rows of one ``llm_complete_json`` call share ``invocation``. The prompt itself is not stored,
    only ``input_sha256`` of system prompt, context, instructions and schema; API keys never are.
    ``provider`` is ``offline`` for answers made from rule templates, which are no LLM.
    """

    invocation = models.UUIDField(db_index=True)
    provider = models.CharField(max_length=32, db_index=True)
    model = models.CharField(max_length=100)
    purpose = models.CharField(max_length=64, db_index=True)
    template = models.CharField(max_length=100)
    template_version = models.CharField(max_length=32)
    input_sha256 = models.CharField(max_length=64)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    latency_ms = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=LLMCallStatus.choices, db_index=True)
    error = models.TextField(blank=True, default="")
    answer = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "LLM call"
        indexes = [models.Index(fields=("input_sha256", "provider", "model", "-created_at"))]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {self.purpose} ({self.status})"
