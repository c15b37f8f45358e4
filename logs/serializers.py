from rest_framework import serializers

from logs.models import Log


class LogSerializer(serializers.ModelSerializer):
    level = serializers.CharField(source="level_name", read_only=True)

    class Meta:
        model = Log
        fields = [
            "id",
            "timestamp",
            "received_at",
            "level",
            "service_name",
            "message",
            "metadata",
        ]
        read_only_fields = fields
