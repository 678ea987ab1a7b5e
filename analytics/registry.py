"""Which pipeline processes which dataset.

Pipelines are imported lazily: the handler module must stay light to import, and only a record of
a dataset that needs scikit-learn pays for loading it.
"""

from __future__ import annotations

import importlib
import re

from analytics.base import Pipeline

#: dataset name -> "module:factory" returning a Pipeline. Datasets not listed use the generic one.
_BUILT_IN: dict[str, str] = {
    "ad_performance": "analytics.ad_performance:AdPerformancePipeline",
    "orders": "analytics.orders:OrdersPipeline",
    "experiments": "analytics.experiments:ExperimentsPipeline",
}

_GENERIC = "analytics.generic:GenericPipeline"

_VALID_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,127}$")


def dataset_table_name(dataset: str) -> str:
    """The Glue-safe name (lowercase letters, digits, underscores) for a dataset path segment."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", dataset).strip("_").lower()
    if not name:
        name = "dataset"
    if not name[0].isalpha():
        name = f"d_{name}"
    return name[:128]


def register(dataset: str, target: str) -> None:
    """Register ``module:factory`` as the pipeline of ``dataset``."""
    if not _VALID_DATASET.match(dataset):
        raise ValueError(f"dataset name {dataset!r} must be lowercase letters, digits and underscores")
    _BUILT_IN[dataset] = target


def built_in_datasets() -> list[str]:
    """Names of the datasets that have their own contract and models."""
    return sorted(_BUILT_IN)


def get_pipeline(dataset: str) -> Pipeline:
    """The pipeline for ``dataset`` (the first path segment after ``raw/``)."""
    target = _BUILT_IN.get(dataset_table_name(dataset), _GENERIC)
    module_name, _, factory_name = target.partition(":")
    factory = getattr(importlib.import_module(module_name), factory_name)
    pipeline: Pipeline = factory(dataset_table_name(dataset))
    return pipeline
