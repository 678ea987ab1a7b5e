"""Publishes completion events on the lake bus."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import topology
from handlers.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient


class EventPublisher:
    """Puts ``Dataset Processed`` / ``Dataset Processing Failed`` events on the lake bus."""

    def __init__(self, events: EventBridgeClient, bus_name: str) -> None:
        self._events = events
        self.bus_name = bus_name

    def publish(self, detail: dict[str, Any]) -> None:
        """Publish one event; a rejected entry is transient (EventBridge throttles and recovers)."""
        detail_type = topology.DETAIL_TYPE_PROCESSED if detail["status"] == "succeeded" else topology.DETAIL_TYPE_FAILED
        response = self._events.put_events(
            Entries=[
                {
                    "Source": topology.EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": self.bus_name,
                    "Resources": [f"arn:aws:s3:::{detail['source']['bucket']}/{detail['source']['key']}"],
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise TransientError(
                f"EventBridge refused the completion event: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            )

    def publish_models(self, detail: dict[str, Any]) -> None:
        """Publish ``Dataset Models Updated`` / ``Dataset Models Failed`` (a refresh's outcome)."""
        detail_type = (
            topology.DETAIL_TYPE_MODELS_UPDATED
            if detail["status"] == "succeeded"
            else topology.DETAIL_TYPE_MODELS_FAILED
        )
        response = self._events.put_events(
            Entries=[
                {
                    "Source": topology.EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": self.bus_name,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise TransientError(
                f"EventBridge refused the models event: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            )
