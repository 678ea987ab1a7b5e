"""The AWS CDK app that deploys the lake processor; every name and setting comes from ``topology``."""
