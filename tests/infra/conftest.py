"""Synthesize the CDK app once per session (jsii + Node make each synth cost seconds)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.app import STACK_NAME, build_app

#: A base image pinned by digest, as a deployment would override the default.
CUSTOM_BASE_IMAGE = "public.ecr.aws/lambda/python:3.12@sha256:" + "ab" * 32


@dataclass(frozen=True)
class Synth:
    """One synthesized app: the stack object, its template and the cloud assembly on disk."""

    stack: Any
    template: Any  # aws_cdk.assertions.Template
    template_json: dict[str, Any]
    outdir: Path

    def resources(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        """Logical id -> resource of every resource of ``cfn_type``."""
        return {k: v for k, v in self.template_json["Resources"].items() if v["Type"] == cfn_type}

    def one(self, cfn_type: str) -> tuple[str, dict[str, Any]]:
        """The single resource of ``cfn_type`` (fails if there are several)."""
        found = self.resources(cfn_type)
        assert len(found) == 1, f"expected one {cfn_type}, found {sorted(found)}"
        return next(iter(found.items()))

    def processor(self) -> tuple[str, dict[str, Any]]:
        """The per-file function (the refresh function is the other one of the same image)."""
        logical_id = self.logical_id(self.stack.processing.function)
        return logical_id, self.template_json["Resources"][logical_id]

    def refresher(self) -> tuple[str, dict[str, Any]]:
        """The refresh function."""
        logical_id = self.logical_id(self.stack.refresh.function)
        return logical_id, self.template_json["Resources"][logical_id]

    def logical_id(self, construct: Any) -> str:
        """The logical id CDK gave ``construct`` (an L2 or its L1)."""
        child = getattr(construct.node, "default_child", None) or construct
        return str(self.stack.get_logical_id(child))


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    """Synthesize the real app into ``outdir``; the AwsSolutions checks fail synth on any finding."""
    app, stack = build_app(context=context, outdir=str(outdir))
    assembly = app.synth()
    template_json = assembly.get_stack_by_name(STACK_NAME).template
    return Synth(
        stack=stack,
        # Reuses the synthesis above (the stage caches its assembly), so it costs milliseconds.
        template=Template.from_stack(stack),
        template_json=json.loads(json.dumps(template_json)),
        outdir=outdir,
    )


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """The app as ``cdk deploy`` would see it with default context."""
    yield synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def synth_kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """The app with every context option moved off its default."""
    yield synthesize(
        tmp_path_factory.mktemp("cdk.out.kms"),
        context={
            "bucketEncryption": "kms",
            "architecture": "x86_64",
            "baseImage": CUSTOM_BASE_IMAGE,
            "maxConcurrency": 4,
            "reservedConcurrency": "5",
            "athenaBytesScannedCutoffMb": 1024,
            "deadLetterAgeAlarmDays": 7,
            "functionTimeoutSeconds": 600,
            "functionMemoryMb": 4096,
            "ephemeralStorageMb": 4096,
            "alarmEmail": "data-oncall@example.com",
            "quarantineExpirationDays": 30,
            "athenaResultsExpirationDays": 3,
        },
    )
