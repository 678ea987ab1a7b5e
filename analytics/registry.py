"""Which pipeline processes which dataset.

Pipelines are imported lazily: the handler module must stay light to import, and only a record of
a dataset that needs scikit-learn pays for loading it.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

from analytics.base import Pipeline, Refresher

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


# --- refreshers: models over a dataset's whole history (the refresh stage) ----------------------
@dataclass(frozen=True)
class RefresherSpec:
    """One model a dataset's refresh recomputes: what it is called, where its code is, what it reads."""

    name: str
    #: ``module:function`` of a :class:`analytics.base.Refresher`, imported only when a refresh runs.
    target: str
    #: Curated tables or views its SQL reads (``orders`` is the view over ``orders_sources``); a
    #: refresh is skipped when the snapshots under them are the ones its last run read.
    inputs: tuple[str, ...]
    #: Model tables it writes (a user's model declaring one of them scores it after each refresh).
    outputs: tuple[str, ...] = ()
    #: Of its outputs, those it reads back (earlier ``as_of`` snapshots, say to carry a running
    #: minimum): readable by its SQL once they exist, and not inputs a refresh can be skipped on.
    reads_back: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not set(self.reads_back) <= set(self.outputs):
            raise ValueError(
                f"refresher {self.name}: reads_back {sorted(set(self.reads_back) - set(self.outputs))} are not among "
                "its outputs; a table it reads but does not write is an input"
            )


#: dataset name -> its refreshers, in the order they run. Another model plugs in with
#: :func:`register_refresher` (for example ``customer_value`` on ``orders``).
_REFRESHERS: dict[str, list[RefresherSpec]] = {
    "orders": [
        RefresherSpec(
            "customer_rfm", "analytics.orders:refresh_customers", ("orders",), ("customer_rfm", "customer_segments")
        ),
        RefresherSpec(
            "customer_value", "analytics.history_refreshers:refresh_customer_value", ("orders",), ("customer_value",)
        ),
    ],
    "experiments": [
        RefresherSpec(
            "experiment_history",
            "analytics.history_refreshers:refresh_experiments",
            ("experiment_exposures_sources",),
            ("experiment_results_history", "experiment_crossed_users"),
            reads_back=("experiment_results_history",),
        ),
    ],
    "ad_performance": [
        RefresherSpec(
            "kpi_history",
            "analytics.history_refreshers:refresh_kpi_history",
            ("ad_performance",),
            ("campaign_kpis_history", "kpi_anomalies_history"),
        )
    ],
}


def register_refresher(dataset: str, spec: RefresherSpec) -> None:
    """Add ``spec`` to the refreshers of ``dataset`` (replacing one of the same name)."""
    if not _VALID_DATASET.match(dataset):
        raise ValueError(f"dataset name {dataset!r} must be lowercase letters, digits and underscores")
    kept = [s for s in _REFRESHERS.get(dataset, []) if s.name != spec.name]
    _REFRESHERS[dataset] = [*kept, spec]


def refreshers(dataset: str) -> list[RefresherSpec]:
    """The refreshers of ``dataset``; empty for a dataset whose models need no history."""
    return list(_REFRESHERS.get(dataset_table_name(dataset), []))


def refreshed_tables(dataset: str) -> set[str]:
    """Names of the model tables the refresh of ``dataset`` writes."""
    return {table for spec in refreshers(dataset) for table in spec.outputs}


def load_refresher(spec: RefresherSpec) -> Refresher:
    """The refresher function ``spec`` names."""
    module_name, _, function_name = spec.target.partition(":")
    refresher: Refresher = getattr(importlib.import_module(module_name), function_name)
    return refresher
