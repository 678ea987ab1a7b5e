"""Which datasets are built in, and what each one is: the :class:`~analytics.spec.DatasetSpec` of each.

The specs are collected by importing the dataset modules on first use (not when this module is
imported): the handler module stays light to import, and the dataset modules import scikit-learn and
scipy only inside the functions that use them, so a file of a generic dataset never pays for them.
Datasets without a spec use the generic pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache

from analytics.base import Pipeline
from analytics.spec import DatasetSpec, RefresherSpec

_VALID_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,127}$")

#: Refreshers plugged in from outside (:func:`register_refresher`), by dataset, replacing a spec's
#: refresher of the same name.
_EXTRA_REFRESHERS: dict[str, list[RefresherSpec]] = {}
#: Specs registered from outside (:func:`register`), by dataset.
_REGISTERED: dict[str, DatasetSpec] = {}


@cache
def _built_in() -> Mapping[str, DatasetSpec]:
    from analytics import ad_performance, experiments, orders

    specs = (ad_performance.SPEC, orders.SPEC, experiments.SPEC)
    return {spec.name: spec for spec in specs}


def dataset_table_name(dataset: str) -> str:
    """The Glue-safe name (lowercase letters, digits, underscores) for a dataset path segment."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", dataset).strip("_").lower()
    if not name:
        name = "dataset"
    if not name[0].isalpha():
        name = f"d_{name}"
    return name[:128]


def _check_name(dataset: str) -> None:
    if not _VALID_DATASET.match(dataset):
        raise ValueError(f"dataset name {dataset!r} must be lowercase letters, digits and underscores")


def register(spec: DatasetSpec) -> None:
    """Make ``spec`` a built-in dataset (replacing one of the same name)."""
    _check_name(spec.name)
    _REGISTERED[spec.name] = spec


def specs() -> dict[str, DatasetSpec]:
    """Every built-in dataset's spec, by name."""
    return {**_built_in(), **_REGISTERED}


def spec(dataset: str) -> DatasetSpec | None:
    """The spec of ``dataset`` (a raw/ path segment); None for a generic dataset."""
    return specs().get(dataset_table_name(dataset))


def built_in_datasets() -> list[str]:
    """Names of the datasets that have their own contract and models."""
    return sorted(specs())


def get_pipeline(dataset: str) -> Pipeline:
    """The pipeline for ``dataset`` (the first path segment after ``raw/``)."""
    found = spec(dataset)
    if found is None:
        from analytics.generic import GenericPipeline

        return GenericPipeline(dataset_table_name(dataset))
    return found.pipeline(dataset_table_name(dataset))


# --- refreshers: models over a dataset's whole history (the refresh stage) ----------------------
def register_refresher(dataset: str, refresher: RefresherSpec) -> None:
    """Add ``refresher`` to the refreshers of ``dataset`` (replacing one of the same name)."""
    _check_name(dataset)
    kept = [s for s in _EXTRA_REFRESHERS.get(dataset, []) if s.name != refresher.name]
    _EXTRA_REFRESHERS[dataset] = [*kept, refresher]


def refreshers(dataset: str) -> list[RefresherSpec]:
    """The refreshers of ``dataset``, in the order they run; empty for a dataset whose models need no history."""
    name = dataset_table_name(dataset)
    found = spec(name)
    extra = _EXTRA_REFRESHERS.get(name, [])
    replaced = {r.name for r in extra}
    own = [r for r in (found.refreshers if found else ()) if r.name not in replaced]
    return [*own, *extra]


def refreshed_tables(dataset: str) -> set[str]:
    """Names of the model tables the refresh of ``dataset`` writes."""
    return {table for r in refreshers(dataset) for table in r.outputs}


def table_keys() -> dict[str, tuple[str, ...]]:
    """Key columns of every keyed table of the built-in datasets (curated and model tables)."""
    keys: dict[str, tuple[str, ...]] = {}
    for s in specs().values():
        keys.update(s.keys())
    return keys


__all__ = [
    "DatasetSpec",
    "RefresherSpec",
    "built_in_datasets",
    "dataset_table_name",
    "get_pipeline",
    "refreshed_tables",
    "refreshers",
    "register",
    "register_refresher",
    "spec",
    "specs",
    "table_keys",
]
