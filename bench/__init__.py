"""Benchmarks: ``python -m bench.marketing`` measures the marketing pipelines."""
