"""Models users bring: the manifest, the trusted-types loader and the scores table."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import FunctionTransformer

from analytics.errors import DataError
from analytics.scoring import (
    ModelManifestError,
    UntrustedModelError,
    load_model,
    parse_manifest,
    score_table,
    scores_table_spec,
    scoring_fact,
)

from .conftest import assert_matches_spec, source_for


@pytest.fixture
def sio() -> Any:
    """``skops.io``, imported by the tests that use it: it imports every scikit-learn estimator (about
    4 s of CPU), which every test worker paid when it collected this file at the top."""
    import skops.io

    return skops.io


LOADED: list[str] = []


class Sneaky(ClassifierMixin, BaseEstimator):
    """A custom class: skops cannot vouch for it, so loading must refuse before running it."""

    def fit(self, x: Any, y: Any) -> Sneaky:
        return self

    def __setstate__(self, state: dict[str, Any]) -> None:
        LOADED.append("ran")  # would prove the file's code executed
        self.__dict__.update(state)


MANIFEST = {
    "name": "repeat_purchase_propensity",
    "version": "1.0.0",
    "table": "customer_rfm",
    "features": ["recency_days", "orders"],
    "output_column": "repeat_purchase_probability",
}


def rfm_table() -> pa.Table:
    return pa.table(
        {
            "customer_id": ["001", "002", "003", "004"],
            "recency_days": pa.array([1, 300, None, 20], pa.int64()),
            "orders": pa.array([10, 1, 3, 5], pa.int64()),
        }
    )


def trained_classifier() -> LogisticRegression:
    x = np.array([[1, 10], [300, 1], [5, 8], [400, 1], [10, 6], [250, 2]], dtype=float)
    y = np.array([1, 0, 1, 0, 1, 0])
    return LogisticRegression(random_state=0).fit(x, y)


def test_manifest_defaults_and_errors() -> None:
    manifest = parse_manifest(json.dumps(MANIFEST))
    assert manifest.key_columns == ("customer_id",) and manifest.model_file == "model.skops"
    with pytest.raises(ModelManifestError, match=r"misses field.*features"):
        parse_manifest(json.dumps({k: v for k, v in MANIFEST.items() if k != "features"}))
    with pytest.raises(ModelManifestError, match="not valid JSON"):
        parse_manifest("{name:")
    with pytest.raises(ModelManifestError, match="key_columns"):
        parse_manifest(json.dumps(MANIFEST | {"table": "my_table"}))
    with pytest.raises(ModelManifestError, match="task"):
        parse_manifest(json.dumps(MANIFEST | {"task": "magic"}))
    with pytest.raises(ModelManifestError, match="model_file"):
        parse_manifest(json.dumps(MANIFEST | {"model_file": "../model.pkl"}))


def test_an_untrusted_type_is_refused_by_name_and_never_executed(sio: Any) -> None:
    # GIVEN a skops file holding a class skops does not trust
    data = sio.dumps(Sneaky())
    LOADED.clear()
    # WHEN loaded THEN the error names the type, is a DataError (permanent), and nothing ran
    with pytest.raises(UntrustedModelError, match=r"test_scoring\.Sneaky") as error:
        load_model(data)
    assert isinstance(error.value, DataError)
    assert LOADED == []


def test_a_function_reference_such_as_os_system_is_refused(sio: Any) -> None:
    data = sio.dumps(FunctionTransformer(func=os.system))
    with pytest.raises(UntrustedModelError, match="system"):
        load_model(data)


def test_operator_trusted_types_are_allowed(sio: Any) -> None:
    data = sio.dumps(Sneaky())
    untrusted = sio.get_untrusted_types(data=data)
    model = load_model(data, trusted=untrusted)
    assert isinstance(model, Sneaky)


def test_bytes_that_are_not_a_skops_file_are_a_clear_error() -> None:
    with pytest.raises(ModelManifestError, match="not a readable skops file"):
        load_model(b"\x80\x04pickle bytes")


def test_scores_follow_the_spec_and_null_features_give_null_scores(sio: Any) -> None:
    model = load_model(sio.dumps(trained_classifier()))
    manifest = parse_manifest(json.dumps(MANIFEST))
    source = source_for("orders")
    scores = score_table(model, manifest, rfm_table(), source)
    assert_matches_spec(scores, scores_table_spec("orders"))
    assert scores_table_spec("orders").name == "orders_scores"
    rows = scores.to_pylist()
    assert [r["key"] for r in rows] == ["001", "002", "003", "004"]
    assert rows[2]["score"] is None  # recency missing: no guess
    assert rows[0]["score"] > 0.5 > rows[1]["score"]
    expected = trained_classifier().predict_proba(np.array([[1.0, 10.0]]))[0, 1]
    assert rows[0]["score"] == pytest.approx(expected, abs=1e-12)
    assert {r["label"] for r in rows if r["score"] is not None} == {"1"}
    fact = scoring_fact(manifest, scores)
    assert (fact.name, fact.version, fact.metrics["rows_scored"]) == (
        "repeat_purchase_propensity",
        "1.0.0",
        3,
    )


def test_regressors_and_composite_keys(sio: Any) -> None:
    x = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 3.0]])
    model = load_model(sio.dumps(LinearRegression().fit(x, x.sum(axis=1))))
    manifest = parse_manifest(
        json.dumps(MANIFEST | {"table": "campaign_kpis_by_file", "features": ["clicks", "spend"], "task": "prediction"})
    )
    kpis = pa.table({"date": ["2024-01-01"], "channel": ["meta"], "campaign": ["c1"], "clicks": [2.0], "spend": [5.0]})
    scores = score_table(model, manifest, kpis, source_for("ad_performance"))
    assert scores.column("key").to_pylist() == ["2024-01-01|meta|c1"]
    assert scores.column("key_columns").to_pylist() == ["date,channel,campaign"]
    assert scores.column("score").to_pylist() == [pytest.approx(7.0)]


def test_feature_mismatches_are_manifest_errors(sio: Any) -> None:
    model = load_model(sio.dumps(trained_classifier()))
    too_many = parse_manifest(json.dumps(MANIFEST | {"features": ["recency_days", "orders", "tenure_days"]}))
    with pytest.raises(ModelManifestError, match="has no column"):
        score_table(model, too_many, rfm_table(), source_for("orders"))
    three = rfm_table().append_column("tenure_days", pa.array([1, 2, 3, 4]))
    with pytest.raises(ModelManifestError, match="expects 2 features"):
        score_table(model, too_many, three, source_for("orders"))


def test_the_example_training_script_publishes_a_model_the_loader_accepts(tmp_path: Path) -> None:
    from examples.train_propensity_model import main as train_example

    assert train_example([str(tmp_path), "--orders", "4000", "--seed", "1"]) == 0
    manifest = parse_manifest((tmp_path / "manifest.json").read_text())
    model = load_model((tmp_path / manifest.model_file).read_bytes())
    rfm = pa.table({name: pa.array([1.0, 200.0]) for name in manifest.features}).append_column(
        "customer_id", pa.array(["a", "b"])
    )
    scores = score_table(model, manifest, rfm, source_for("orders"))
    assert scores.column("score").null_count == 0
