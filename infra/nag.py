"""cdk-nag (v3) acknowledgments: every one names its rule, its exact findings and a reason."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from constructs import IConstruct

#: A reason shorter than this is not a reason a security reviewer can check.
MIN_REASON_LENGTH = 40


def acknowledge(scope: IConstruct, rule: str, reason: str, findings: Sequence[str] = ()) -> None:
    """Acknowledge ``rule`` on ``scope`` (and its children), per finding for granular rules."""
    if len(reason) < MIN_REASON_LENGTH:
        raise ValueError(f"acknowledging {rule} needs a reason a reviewer can check, got {reason!r}")
    ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    cdk.Validations.of(scope).acknowledge(*(cdk.Acknowledgment(id=i, reason=reason) for i in ids))
