"""Admin page of the llm app: the read-only log of LLM calls, with cost totals of what is shown."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from apps.core.admin import ReadOnlyAdmin, list_time
from apps.llm import selectors
from apps.llm.models import LLMCall


@admin.register(LLMCall)
class LLMCallAdmin(ReadOnlyAdmin):
    """Written only by ``llm_complete_json``: viewable, never added, edited or deleted by hand (the
    day's budget is summed from these rows).

    The changelist header totals tokens and estimated cost of the calls the filters select.
    """

    list_display = (
        "created", "provider", "model", "purpose", "status", "tokens_in", "tokens_out", "cost_usd",
    )  # fmt: skip
    created = list_time("created_at", "created")
    list_filter = ("provider", "status", "purpose", ("created_at", admin.DateFieldListFilter))
    search_fields = ("template", "input_sha256", "error", "=invocation")
    date_hierarchy = "created_at"
    fields = (
        "created_at", "invocation", "provider", "model", "purpose", "template", "template_version",
        "input_sha256", "status", "tokens_in", "tokens_out", "cost_usd", "latency_ms", "error", "answer",
    )  # fmt: skip
    readonly_fields = fields

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if isinstance(response, TemplateResponse) and "cl" in response.context_data:
            response.context_data["llm_totals"] = selectors.call_totals(response.context_data["cl"].queryset)
            response.context_data["llm_budget"] = selectors.budget_today()
        return response
