"""Admin building blocks shared by the apps: read-only pages for records the system writes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from axes.admin import AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessFailureLog, AccessLog
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask
from knox.admin import AuthTokenAdmin
from knox.models import AuthToken


class ScreenAdmin(admin.ModelAdmin):
    """The project's model pages: list tables that fit a 1400 px screen beside the sidebar and the
    filters, one line a row, long values cut with an ellipsis (the row's own page shows them whole)."""

    class Media:
        css = {"all": ("core/admin_lists.css",)}


def list_time(field: str, description: str | None = None) -> Callable[[Any, Model], str]:
    """A list column showing ``field`` as "2019-10-17 10:05" in the site's time zone: a third of the
    width of the admin's "Oct. 17, 2019, 10:05 a.m.", and written as the charts write times."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def show(model_admin: Any, obj: Model) -> str:
        value: datetime | None = getattr(obj, field)
        return "-" if value is None else f"{timezone.localtime(value):%Y-%m-%d %H:%M}"

    return show


class ReadOnlyAdmin(ScreenAdmin):
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
# Knox's tokens (a 128-character digest) and the schedule's tasks: their lists fit the screen too.
for _model, _admin in ((AuthToken, AuthTokenAdmin), (PeriodicTask, PeriodicTaskAdmin)):
    admin.site.unregister(_model)
    admin.site.register(_model, type(_admin.__name__, (ScreenAdmin, _admin), {}))
