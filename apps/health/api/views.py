"""Health endpoints: the live document (public), snapshot history and on-demand snapshots."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.job_wait import WAIT_PARAMETER, job_awaited
from apps.core.tokens import TokenAuthentication
from apps.health import selectors, services
from apps.health.api.serializers import (
    HealthSnapshotSerializer,
    HealthSnapshotSummarySerializer,
    SnapshotAcceptedSerializer,
)
from apps.health.checks import UNHEALTHY
from apps.health.models import HealthSnapshot, SnapshotTrigger
from workers import app as celery_app
from workers.health import snapshot_run


def _is_staff(request: Request) -> bool:
    return bool(getattr(request.user, "is_staff", False))


class HealthView(APIView):
    """The health document of the brief; HTTP 503 when the system is unhealthy. Public and never
    throttled (monitors poll it); recent errors' messages are shown to staff only."""

    permission_classes = (AllowAny,)
    # Credentials are read (staff see error messages) but an anonymous call is not rate-limited.
    authentication_classes = (TokenAuthentication, SessionAuthentication)
    throttle_classes = ()

    @extend_schema(responses={200: dict, 503: dict}, summary="System health")
    def get(self, request: Request) -> Response:
        document = selectors.document_for(
            selectors.health_document(celery_app=celery_app), staff=_is_staff(request)
        )
        code = status.HTTP_503_SERVICE_UNAVAILABLE if document["status"] == UNHEALTHY else status.HTTP_200_OK
        return Response(document, status=code, headers={"Cache-Control": "no-store"})


class SnapshotsView(generics.ListAPIView):
    """GET: stored health snapshots, newest first. POST: ask a worker to take one now (202)."""

    serializer_class = HealthSnapshotSummarySerializer
    filterset_fields = ("trigger", "status", "overall_status")

    def get_queryset(self) -> QuerySet[HealthSnapshot]:
        return selectors.snapshot_list()

    @extend_schema(request=None, responses={202: SnapshotAcceptedSerializer})
    def post(self, request: Request) -> Response:
        snapshot = services.snapshot_request(trigger=SnapshotTrigger.API)
        snapshot_run.delay_on_commit(snapshot.pk)
        url = reverse("health-snapshot-detail", kwargs={"snapshot_id": snapshot.pk})
        body = {"id": snapshot.pk, "status": snapshot.status, "url": url}
        return Response(SnapshotAcceptedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class SnapshotDetailView(APIView):
    @extend_schema(parameters=[WAIT_PARAMETER], responses=HealthSnapshotSerializer)
    def get(self, request: Request, snapshot_id: str) -> Response:
        snapshots = selectors.snapshot_list()
        snapshot = job_awaited(request, lambda: get_object_or_404(snapshots, pk=int(snapshot_id)))
        data = HealthSnapshotSerializer(snapshot).data
        if data["document"]:
            data["document"] = selectors.document_for(data["document"], staff=_is_staff(request))
        return Response(data)
