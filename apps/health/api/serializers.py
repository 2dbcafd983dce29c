"""Shapes of the health API."""

from rest_framework import serializers

from apps.health.models import HealthSnapshot


class HealthSnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = HealthSnapshot
        fields = (
            "id",
            "trigger",
            "status",
            "overall_status",
            "slot",
            "worker",
            "attempts",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "document",
        )
        read_only_fields = fields


class HealthSnapshotSummarySerializer(HealthSnapshotSerializer):
    class Meta(HealthSnapshotSerializer.Meta):
        fields = tuple(name for name in HealthSnapshotSerializer.Meta.fields if name != "document")
        read_only_fields = fields


class SnapshotAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField(help_text="Poll this URL until status is completed or failed.")
