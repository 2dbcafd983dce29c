"""Admin building blocks shared by the apps: read-only pages for records the system writes."""

from __future__ import annotations

from collections.abc import Sequence

from axes.admin import AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessFailureLog, AccessLog
from django.contrib import admin
from django.http import HttpRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by services and jobs (decisions, orders, fills, cycles, runs): viewable, never
    added, edited or deleted by hand, so the audit trail stays whole; prune jobs age them out."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """A read-only table of related records on a parent's page."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> Sequence[str]:
        # Every shown field, non-editable ones (created_at) included: a form over them is a FieldError.
        return tuple(self.fields or ()) + tuple(super().get_readonly_fields(request, obj))


# django-axes' logs of logins and failures are records too; its access attempts stay deletable
# (deleting one is how staff unlock a locked-out username or address).
for _model, _admin in ((AccessLog, AccessLogAdmin), (AccessFailureLog, AccessFailureLogAdmin)):
    admin.site.unregister(_model)
    admin.site.register(_model, type(f"ReadOnly{_admin.__name__}", (ReadOnlyAdmin, _admin), {}))
