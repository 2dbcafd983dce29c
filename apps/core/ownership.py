"""Who may see, change and start research objects and jobs: owners, staff, the researchers group and a cap.

Strategies, backtests, optimisation runs, generation runs and ML models have an ``owner``: the
user whose request made them, or null when the system made them (the daily update, the scheduled
training, the demo data, a management command). The rules, enforced by the selectors and services
of each app and answered by the API:

- **Seeing.** A user sees their own objects and the system's; staff see all. Another user's object
  is answered exactly as one that does not exist (a 404), so its existence does not leak.
- **Changing.** A user changes only their own objects; the system's and other users' are changed
  by staff only (a visible one the user may not change is a 403). An app may add guards: a
  strategy that a live account trades is changed by staff only.
- **Costly work.** Starting LLM generation or training is a permission, not any login: members of
  the ``researchers`` group (or anyone holding the permission), staff and superusers may.
- **A cap.** A user has at most ``API_MAX_QUEUED_JOBS_PER_USER`` jobs pending or running at once;
  another request is refused (429) and creates nothing. System jobs are not counted.

``user=None`` in these functions is the system itself: it sees and changes everything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AbstractUser, AnonymousUser, Group, Permission
from django.db import models, transaction
from django.db.models import Q, QuerySet

from apps.core.models import UNFINISHED

M = TypeVar("M", bound=models.Model)
User = AbstractBaseUser | AnonymousUser

RESEARCHERS = "researchers"


class AccessRefused(Exception):
    """A request the ownership rules refuse; ``code`` is the API error code."""

    code = "permission_denied"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.code


class NotVisible(AccessRefused):
    """The object is not the user's to see: answered as if it did not exist (404)."""

    code = "not_found"


class ChangeRefused(AccessRefused):
    """The user sees the object but may not change it (403)."""


class PermissionRequired(AccessRefused):
    """The work needs a permission the user lacks (403)."""

    code = "permission_required"


class TooManyJobs(AccessRefused):
    """The user's queued jobs reached ``API_MAX_QUEUED_JOBS_PER_USER`` (429)."""

    code = "too_many_jobs"


Guard = Callable[[Any], str | None]
_guards: dict[type[models.Model], list[Guard]] = defaultdict(list)
_queued_kinds: list[type[models.Model]] = []
_research_permissions: set[str] = set()


def change_guard_register(*, model: type[models.Model], guard: Guard) -> None:
    """Let a higher app refuse non-staff changes of ``model`` objects: ``guard(obj)`` returns why
    only staff may change it now, or None. (Apps below cannot import the app that knows why.)"""
    if guard not in _guards[model]:
        _guards[model].append(guard)


def queued_kind_register(*, model: type[models.Model]) -> None:
    """Count this owned job model's PENDING and RUNNING rows against their owner's cap."""
    if model not in _queued_kinds:
        _queued_kinds.append(model)


def research_permission_register(*, permission: str) -> None:
    """An ``app_label.codename`` permission for costly work, held by the researchers group."""
    _research_permissions.add(permission)


def actor_name(user: User | None) -> str:
    """How a user is named in the records they leave (decisions, orders): the username, or
    ``system`` for a change the system made without naming its job."""
    return "system" if user is None else user.get_username()


def _sees_all(user: User | None) -> bool:
    return user is None or bool(user.is_staff)


def visible_to(queryset: QuerySet[M], user: User | None, *through: str) -> QuerySet[M]:
    """The rows of ``queryset`` that ``user`` may see: their own and the system's (staff: all).

    ``through`` names owned objects the row depends on, which must be visible too: a backtest of
    another user's strategy, made by the daily update, is not shown to a third user.
    """
    if _sees_all(user):
        return queryset
    for prefix in ("", *(f"{path}__" for path in through)):
        queryset = queryset.filter(
            Q(**{f"{prefix}owner_id": user.pk}) | Q(**{f"{prefix}owner__isnull": True})
        )
    return queryset


def see_check(*, obj: Any, user: User | None, what: str) -> None:
    """Raise NotVisible unless ``user`` may see ``obj``: their own, the system's, or any for staff."""
    if not _sees_all(user) and obj.owner_id not in (None, user.pk):
        raise NotVisible(f"no {what}")


def change_check(*, obj: Any, user: User | None, what: str) -> None:
    """Raise unless ``user`` may change ``obj`` (``what`` names it in the message): NotVisible for
    another user's object, ChangeRefused for the system's or one a guard protects. Staff and the
    system may change anything."""
    if _sees_all(user):
        return
    if obj.owner_id is None:
        raise ChangeRefused(f"{what} was made by the system: only staff may change it")
    if obj.owner_id != user.pk:
        raise NotVisible(f"no {what}")
    for guard in _guards.get(type(obj), ()):
        if reason := guard(obj):
            raise ChangeRefused(reason, code="staff_only")


def permission_check(*, user: User | None, permission: str, work: str) -> None:
    """Raise PermissionRequired unless ``user`` may do ``work``: staff, superusers and holders of
    ``permission`` (members of the researchers group) may; so may the system."""
    if _sees_all(user) or user.has_perm(permission):
        return
    raise PermissionRequired(
        f"{work} needs the {permission} permission: ask an administrator to add you to the "
        f"{RESEARCHERS!r} group"
    )


def queued_jobs(*, user: User) -> int:
    """How many jobs ``user`` owns that are pending or running, over every registered kind."""
    return sum(kind.objects.filter(owner_id=user.pk, status__in=UNFINISHED).count() for kind in _queued_kinds)


@contextmanager
def job_slot(*, owner: User | None) -> Iterator[None]:
    """A transaction in which a job row for ``owner`` may be created, if the owner's cap allows it.

    The owner's user row is locked first, so two concurrent requests of one user are counted one
    after the other and cannot both take the last slot. Raises TooManyJobs, creating nothing,
    when ``API_MAX_QUEUED_JOBS_PER_USER`` of their jobs are pending or running. The system
    (``owner=None``) has no cap.
    """
    with transaction.atomic():
        if owner is not None:
            get_user_model().objects.select_for_update().get(pk=owner.pk)
            limit = settings.API_MAX_QUEUED_JOBS_PER_USER
            if queued_jobs(user=owner) >= limit:
                raise TooManyJobs(
                    f"{owner.get_username()} has {limit} jobs pending or running, the most allowed "
                    "(API_MAX_QUEUED_JOBS_PER_USER): wait for one to finish, or cancel one"
                )
        yield


def researchers_group() -> Group:
    """The group whose members may start costly work, created if missing and holding every
    registered research permission (a flushed test database or a deleted group heals here)."""
    group, _ = Group.objects.get_or_create(name=RESEARCHERS)
    for permission in sorted(_research_permissions):
        app_label, codename = permission.split(".", 1)
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return group


def researcher_set(*, user: AbstractUser, member: bool = True) -> None:
    """Add ``user`` to the researchers group (or take them out of it)."""
    group = researchers_group()
    if member:
        user.groups.add(group)
    else:
        user.groups.remove(group)
