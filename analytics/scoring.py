"""Models users bring: a skops file plus a JSON manifest, scoring one output table of a dataset.

The handler fetches ``models/<dataset>/manifest.json`` and the model file it names, then calls:

>>> manifest = parse_manifest(manifest_bytes)
>>> model = load_model(model_bytes)                      # refuses untrusted types, never runs them
>>> scores = score_table(model, manifest, output_table, source)
>>> sink.write(scores_table_spec(source.dataset).name, scores)
>>> facts.append(scoring_fact(manifest, scores))

Only :mod:`skops.io` is used to load: no pickle. Before loading, every type in the file is listed
with :func:`skops.io.get_untrusted_types`; anything outside skops' default trusted set (scikit-learn
estimators, numpy, scipy) and the operator's explicit ``trusted`` list raises
:class:`UntrustedModelError` naming the types, and nothing from the file is executed.

Manifest (JSON object)::

    {
      "format_version": 1,                      # optional, 1 is the only version
      "name": "repeat_purchase_propensity",     # model name, letters/digits/_-.
      "version": "2024-06-01",                  # any short string
      "table": "customer_rfm",                  # the output table whose rows are scored
      "features": ["recency_days", "orders"],   # columns of that table, in the model's order
      "output_column": "repeat_purchase_probability",  # what the score means
      "key_columns": ["customer_id"],           # optional; default per built-in table
      "model_file": "model.skops",              # optional, next to the manifest
      "task": "probability"                     # optional: probability | prediction | auto
    }
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analytics.base import ModelFact, SourceInfo, TableSpec, col
from analytics.errors import DataError

Task = Literal["auto", "probability", "prediction"]

#: Rows scored per model call; bounds the memory of the feature matrix.
CHUNK_ROWS = 100_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
#: Separator of composite key values in the ``key`` column, in ``key_columns`` order.
KEY_SEPARATOR = "|"


class ModelManifestError(DataError):
    """The manifest is not valid JSON, misses a field, or does not fit the table or the model."""


class UntrustedModelError(DataError):
    """The model file holds types outside the trusted set; it was not loaded."""


class ModelScoringError(DataError):
    """The model failed on the table's features."""


@dataclass(frozen=True)
class ModelManifest:
    """What a model is, which table it scores and with which columns."""

    name: str
    version: str
    table: str
    features: tuple[str, ...]
    output_column: str
    key_columns: tuple[str, ...]
    model_file: str = "model.skops"
    task: Task = "auto"


def scores_table_spec(dataset: str) -> TableSpec:
    """The ``<dataset>_scores`` table: one row per scored row and model, a fixed schema."""
    return TableSpec(
        f"{dataset}_scores",
        "ingest_date",
        f"Scores of models users bring for dataset {dataset}: one row per scored row and model.",
        pa.schema(
            [
                col("scored_table", pa.string(), "the table scored (manifest `table`)"),
                col("key_columns", pa.string(), "the key columns, comma-separated"),
                col(
                    "key",
                    pa.string(),
                    "the row's key values joined with `|` in `key_columns` order (join `key = customer_id` for "
                    "customer_rfm)",
                ),
                col("output", pa.string(), "manifest `output_column`"),
                col("score", pa.float64(), "probability (classifiers) or prediction (regressors)"),
                col("label", pa.string(), "class the probability is of (classifiers), null for regressors"),
                col("model_name", pa.string(), "manifest `name`"),
                col("model_version", pa.string(), "manifest `version`"),
                ("source_id", pa.string()),
                col("ingest_date", pa.date32(), "the day the file was stored"),
            ]
        ),
    )


def parse_manifest(text: str | bytes) -> ModelManifest:
    """Parse and check a manifest; :class:`ModelManifestError` says which field is wrong."""
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelManifestError(f"model manifest is not valid JSON ({exc}); fix the file and upload it again") from exc
    if not isinstance(raw, dict):
        raise ModelManifestError(
            "model manifest must be a JSON object with name, version, table, features, output_column"
        )
    version = raw.get("format_version", 1)
    if version != 1:
        raise ModelManifestError(f"model manifest format_version {version!r} is not supported; use 1")
    missing = [f for f in ("name", "version", "table", "features", "output_column") if f not in raw]
    if missing:
        raise ModelManifestError(
            f'model manifest misses field(s) {", ".join(missing)}; see "Models you bring" in the README for the format'
        )
    for field_name in ("name", "output_column", "table"):
        value = raw[field_name]
        if not isinstance(value, str) or not _NAME.match(value):
            raise ModelManifestError(
                f"model manifest field {field_name!r} must be a short name (letters, digits, _ - .), got {value!r}"
            )
    features = raw["features"]
    if not isinstance(features, list) or not features or not all(isinstance(f, str) and f for f in features):
        raise ModelManifestError("model manifest field 'features' must be a non-empty list of column names")
    if len(set(features)) != len(features):
        raise ModelManifestError("model manifest field 'features' lists a column twice")
    table = raw["table"]
    from analytics.registry import table_keys  # every dataset spec declares its tables' keys

    keys = raw.get("key_columns", table_keys().get(table))
    if not keys or not isinstance(keys, list | tuple) or not all(isinstance(k, str) for k in keys):
        raise ModelManifestError(
            f"model manifest must list 'key_columns' for table {table!r} (no default for it); "
            "name the columns that identify a row"
        )
    task = raw.get("task", "auto")
    if task not in ("auto", "probability", "prediction"):
        raise ModelManifestError(f"model manifest field 'task' must be auto, probability or prediction, got {task!r}")
    model_file = raw.get("model_file", "model.skops")
    if not isinstance(model_file, str) or "/" in model_file or not model_file.endswith(".skops"):
        raise ModelManifestError(
            f"model manifest field 'model_file' must be a .skops file name next to the manifest, got {model_file!r}"
        )
    return ModelManifest(
        name=raw["name"],
        version=str(raw["version"]),
        table=table,
        features=tuple(features),
        output_column=raw["output_column"],
        key_columns=tuple(keys),
        model_file=model_file,
        task=task,
    )


def load_model(data: bytes, *, trusted: Sequence[str] = ()) -> Any:
    """Load a skops model from bytes, refusing any type outside the trusted set.

    ``trusted`` widens skops' default set with fully qualified type names; it is the operator's
    decision (a setting), never the manifest's. Raises :class:`UntrustedModelError` naming the
    types, or :class:`ModelManifestError` when the bytes are not a skops file.
    """
    # Imported here: the handler imports this module for every file, skops only for datasets with a model.
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises zipfile/JSON errors of several kinds for bad bytes
        raise ModelManifestError(
            f"model file is not a readable skops file ({type(exc).__name__}: {exc}); save it with skops.io.dump"
        ) from exc
    refused = sorted(set(untrusted) - set(trusted))
    if refused:
        raise UntrustedModelError(
            f"model file contains type(s) that are not trusted: {', '.join(refused)}. It was not loaded and "
            "nothing in it ran. Save the model using scikit-learn, numpy and scipy types only, or have the "
            "operator add these types to the trusted list."
        )
    try:
        return sio.loads(data, trusted=list(trusted) or None)
    except Exception as exc:
        raise ModelManifestError(f"model file could not be loaded by skops ({type(exc).__name__}: {exc})") from exc


def check_model(model: Any, manifest: ModelManifest) -> None:
    """The model takes as many features as the manifest lists, with the same names if it knows them."""
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and expected != len(manifest.features):
        raise ModelManifestError(
            f"model {manifest.name} expects {expected} features but the manifest lists "
            f"{len(manifest.features)}: "
            f"{', '.join(manifest.features)}"
        )
    names = getattr(model, "feature_names_in_", None)
    if names is not None and list(names) != list(manifest.features):
        raise ModelManifestError(
            f"model {manifest.name} was trained on columns {', '.join(map(str, names))} "
            "but the manifest lists "
            f"{', '.join(manifest.features)}; list them in the training order"
        )


def _key_strings(table: pa.Table, columns: Sequence[str]) -> pa.Array:
    parts = [pc.fill_null(pc.cast(table.column(c), pa.string()), "") for c in columns]
    if len(parts) == 1:
        return parts[0].combine_chunks() if isinstance(parts[0], pa.ChunkedArray) else parts[0]
    joined = pc.binary_join_element_wise(*parts, KEY_SEPARATOR)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def _features(table: pa.Table, manifest: ModelManifest) -> tuple[Any, np.ndarray]:
    """The feature frame (pandas, with the manifest's column names) and which rows are complete."""

    columns = {}
    complete = np.ones(table.num_rows, dtype=bool)
    for name in manifest.features:
        arr = table.column(name)
        if pa.types.is_boolean(arr.type) or pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
            values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False).astype(float)
        else:
            raise ModelManifestError(
                f"feature {name!r} of table {manifest.table} has type {arr.type}; only numeric and boolean "
                "columns can be model features"
            )
        complete &= ~np.isnan(values)
        columns[name] = values
    return pd.DataFrame(columns), complete


def score_table(model: Any, manifest: ModelManifest, table: pa.Table, source: SourceInfo) -> pa.Table:
    """Score every row of ``table`` (the manifest's output table) into ``<dataset>_scores`` rows.

    A row with a null feature gets a null score rather than a guess. For classifiers the score is
    the probability of the positive class (binary) or of the predicted class, with the class in
    ``label``; for regressors it is the prediction.
    """
    missing = [c for c in (*manifest.features, *manifest.key_columns) if c not in table.column_names]
    if missing:
        raise ModelManifestError(
            f"table {manifest.table} has no column(s) {', '.join(missing)} for model {manifest.name}; "
            f"its columns are {', '.join(table.column_names)}"
        )
    check_model(model, manifest)
    n = table.num_rows
    score = np.full(n, np.nan)
    label = np.full(n, None, dtype=object)
    use_proba = manifest.task == "probability" or (manifest.task == "auto" and hasattr(model, "predict_proba"))
    if manifest.task == "probability" and not hasattr(model, "predict_proba"):
        raise ModelManifestError(f"model {manifest.name} has no predict_proba; set task to 'prediction'")
    for start in range(0, n, CHUNK_ROWS):
        chunk = table.slice(start, CHUNK_ROWS)
        frame, complete = _features(chunk, manifest)
        if not complete.any():
            continue
        rows = frame[complete]
        if getattr(model, "feature_names_in_", None) is None:
            # Fitted on a bare array: hand it one, so scikit-learn does not warn about names.
            rows = rows.to_numpy()
        try:
            if use_proba:
                proba = np.asarray(model.predict_proba(rows))
                classes = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1])))
                if proba.shape[1] == 2:
                    chunk_score, chunk_label = proba[:, 1], np.full(len(rows), str(classes[1]), dtype=object)
                else:
                    best = proba.argmax(axis=1)
                    chunk_score, chunk_label = (
                        proba[np.arange(len(rows)), best],
                        classes[best].astype(str).astype(object),
                    )
            else:
                predicted = np.asarray(model.predict(rows))
                if np.issubdtype(predicted.dtype, np.number):
                    chunk_score, chunk_label = predicted.astype(float), np.full(len(rows), None, dtype=object)
                else:
                    chunk_score, chunk_label = (
                        np.full(len(rows), np.nan),
                        predicted.astype(str).astype(object),
                    )
        except Exception as exc:  # any estimator error is the model's, reported with its name
            raise ModelScoringError(
                f"model {manifest.name} {manifest.version} failed on table {manifest.table}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        idx = np.flatnonzero(complete) + start
        score[idx] = chunk_score
        label[idx] = chunk_label
    spec = scores_table_spec(source.dataset)
    out = pa.table(
        {
            "scored_table": pa.repeat(pa.scalar(manifest.table), n),
            "key_columns": pa.repeat(pa.scalar(",".join(manifest.key_columns)), n),
            "key": _key_strings(table, manifest.key_columns),
            "output": pa.repeat(pa.scalar(manifest.output_column), n),
            "score": pa.array(score, mask=np.isnan(score)),
            "label": pa.array(label, pa.string()),
            "model_name": pa.repeat(pa.scalar(manifest.name), n),
            "model_version": pa.repeat(pa.scalar(manifest.version), n),
            "source_id": pa.repeat(pa.scalar(source.source_id), n),
            "ingest_date": pa.repeat(pa.scalar(source.ingest_date, pa.date32()), n),
        }
    )
    return out.cast(spec.schema)


def scoring_fact(manifest: ModelManifest, scores: pa.Table) -> ModelFact:
    """The completion-event fact for one scoring run: model, version, rows scored, mean score."""
    score = scores.column("score")
    mean = pc.mean(score).as_py()
    return ModelFact(
        manifest.name,
        manifest.version,
        {
            "scored_table": manifest.table,
            "output": manifest.output_column,
            "rows": scores.num_rows,
            "rows_scored": scores.num_rows - score.null_count,
            "mean_score": None if mean is None else round(float(mean), 6),
        },
    )
