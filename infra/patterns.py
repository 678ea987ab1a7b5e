"""Turn the topology's EventBridge pattern dictionaries into CDK ``EventPattern`` objects."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_events as events


def event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    """The same pattern, keyword by keyword; unknown top-level keys fail loudly instead of vanishing."""
    fields = {key.replace("-", "_"): value for key, value in pattern.items()}
    try:
        return events.EventPattern(**fields)
    except TypeError as error:
        raise ValueError(f"pattern {pattern!r} has a key EventPattern does not know: {error}") from None
