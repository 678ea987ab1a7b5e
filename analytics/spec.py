"""What defines a dataset, in one place: :class:`DatasetSpec`.

A built-in dataset is one module of ``analytics/`` ending in a ``SPEC``: its contract, the pipeline
that cleans a file, the tables it writes, the refreshers that recompute its models over history, the
vendor exports it recognises and a sample generator. :mod:`analytics.registry` collects the specs
with ordinary imports, so adding an export or a dataset is one module plus its tests.

Report drawers live in ``reports/`` (which may import ``analytics``, never the other way round) and
are found there by the spec's name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from analytics.base import Pipeline, Refresher, TableSpec

if TYPE_CHECKING:
    from analytics.contract import Contract
    from analytics.exports import KnownExport


@dataclass(frozen=True)
class RefresherSpec:
    """One model a dataset's refresh recomputes: what it is called, its function, what it reads."""

    name: str
    #: The :class:`analytics.base.Refresher`, or ``module:function`` naming one (imported when a
    #: refresh runs; for models registered from outside with :func:`analytics.registry.register_refresher`).
    function: Refresher | str
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

    def load(self) -> Refresher:
        """The refresher function."""
        if not isinstance(self.function, str):
            return self.function
        module_name, _, function_name = self.function.partition(":")
        refresher: Refresher = getattr(importlib.import_module(module_name), function_name)
        return refresher


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that makes a dataset built in."""

    name: str
    #: The columns a file must have, with the names real exports use.
    contract: Contract
    #: Builds the dataset's pipeline (called with the dataset's table name).
    pipeline: Callable[[str], Pipeline]
    #: Tables a file of the dataset writes (curated database), in the order the pipeline writes them.
    tables: tuple[TableSpec, ...]
    #: The models recomputed over the whole history after each file, in the order they run.
    refreshers: tuple[RefresherSpec, ...] = ()
    #: Model tables the refreshers write (their schemas, keys and docs).
    model_tables: tuple[TableSpec, ...] = ()
    #: Vendor exports recognised by their header and mapped onto the contract.
    exports: tuple[KnownExport, ...] = ()
    #: The table a report histograms and profiles (the dataset's own rows); defaults to ``name``.
    data_table: str = ""
    #: ``sample(rows, seed=...)`` → CSV text of a realistic file of the dataset (analytics.samples).
    sample: Callable[..., str] | None = None
    #: Key columns of the model tables, for scoring a user's model by row (see analytics.scoring).
    model_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def own_table(self) -> str:
        """The table holding the dataset's rows (``experiments`` → ``experiment_exposures``)."""
        return self.data_table or self.name

    def keys(self) -> dict[str, tuple[str, ...]]:
        """Key columns of every keyed table of the dataset, curated and model."""
        keys = {t.name: t.key for t in (*self.tables, *self.model_tables) if t.key}
        keys.update(self.model_keys)
        return keys
