"""CDK entry point: ``cdk synth``/``cdk deploy`` run this from ``infra/`` (see ``cdk.json``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import ConfigError
from infra.lake_stack import LakeStack

STACK_NAME = "LakeProcessor"
CDK_JSON = Path(__file__).resolve().parent / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """Feature flags from ``cdk.json``, so a synth from Python (tests, ``make synth``) equals the CLI's."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return context


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[cdk.App, LakeStack]:
    """The app with its one stack and the AwsSolutions checks that run when it synthesizes."""
    # The CLI's own context (cdk.json, -c key=value) overrides these defaults when it runs the app.
    app = cdk.App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    # Environment-agnostic unless the CLI knows the target account and region.
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account and region else None
    stack = LakeStack(app, STACK_NAME, env=env, description="Event-driven S3 data-lake processor")
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True)
    )
    return app, stack


def main() -> int:
    """Synthesize; a bad context value is one line on stderr (the option, its value, what is allowed)
    and exit code 2, never a traceback."""
    try:
        build_app()[0].synth()
    except ConfigError as error:
        print(f"LakeProcessor: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
