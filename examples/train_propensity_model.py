"""Train the example repeat-purchase propensity model and publish it for scoring.

Usage::

    uv run python examples/train_propensity_model.py OUT_DIR [--orders 50000] [--seed 7]

writes ``OUT_DIR/model.skops`` and ``OUT_DIR/manifest.json``. Upload both to
``s3://<lake-bucket>/models/orders/`` and every ``orders`` file processed afterwards also writes
``orders_scores``: one row per customer of ``customer_rfm`` with the probability that the customer
orders again within 90 days.

How it is trained: orders from the sample generator (:mod:`analytics.samples`) go through the real
``orders`` pipeline; the clean orders are cut 90 days before the last order date; RFM features are
computed on the orders before the cut with the same code that builds ``customer_rfm``; the label is
whether the customer ordered after the cut. A scikit-learn ``Pipeline`` (``StandardScaler`` +
``LogisticRegression``) is fitted and saved with :func:`skops.io.dump` (no pickle).

The manifest format (JSON object)::

    {
      "format_version": 1,
      "name": "repeat_purchase_propensity",   # model name
      "version": "1.0.0",                     # model version, any short string
      "table": "customer_rfm",                # the output table whose rows it scores
      "features": ["recency_days", ...],      # columns of that table, in training order
      "output_column": "repeat_purchase_probability",  # what the score means
      "key_columns": ["customer_id"],         # columns identifying a scored row
      "model_file": "model.skops",            # the skops file next to the manifest
      "task": "probability"                   # probability | prediction | auto
    }

Only scikit-learn, numpy and scipy types may be inside the skops file: the processor refuses any
other type before loading anything (see :func:`analytics.scoring.load_model`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from analytics import samples
from analytics.base import SourceInfo
from analytics.orders import OrdersPipeline, customer_tables
from analytics.scoring import load_model, parse_manifest

FEATURES = ["recency_days", "tenure_days", "orders", "order_days", "total_amount", "avg_order_amount"]
HORIZON_DAYS = 90
NAME = "repeat_purchase_propensity"
VERSION = "1.0.0"


class _MemorySink:
    def __init__(self) -> None:
        self.tables: dict[str, list[pa.Table]] = {}

    def write(self, table: str, data: pa.Table | pa.RecordBatch) -> None:
        self.tables.setdefault(table, []).append(data if isinstance(data, pa.Table) else pa.Table.from_batches([data]))

    def quarantine(self, rows: pa.Table | pa.RecordBatch) -> None:
        pass


def training_data(orders: int, seed: int) -> tuple[pa.Table, np.ndarray]:
    """RFM features before the cut-off and whether each customer ordered after it."""
    sample = samples.orders_sample(orders, max(orders // 10, 50), seed, bad_share=0.0)
    sink = _MemorySink()
    source = SourceInfo("orders", "training", "raw/orders/training.csv", date.today())
    OrdersPipeline("orders").run(iter(sample.table.to_batches()), source, sink)
    clean = pa.concat_tables(sink.tables["orders"])
    last = pc.max(clean.column("order_date")).as_py()
    cut = pa.scalar(last.toordinal() - HORIZON_DAYS - date(1970, 1, 1).toordinal(), pa.int32()).cast(pa.date32())
    before = clean.filter(pc.less_equal(clean.column("order_date"), cut))
    after = clean.filter(pc.greater(clean.column("order_date"), cut))
    rfm, _, _ = customer_tables(before)
    returned = pc.is_in(rfm.column("customer_id"), value_set=pc.unique(after.column("customer_id")))
    return rfm, np.asarray(returned.to_numpy(zero_copy_only=False), dtype=int)


def main(argv: list[str] | None = None) -> int:
    """Train, save ``model.skops`` and ``manifest.json`` into the folder given, check they load."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    rfm, label = training_data(args.orders, args.seed)
    features = pd.DataFrame({f: rfm.column(f).to_numpy().astype(float) for f in FEATURES})
    model = Pipeline(
        [("scale", StandardScaler()), ("logit", LogisticRegression(max_iter=1000, random_state=args.seed))]
    )
    model.fit(features, label)
    auc = roc_auc_score(label, model.predict_proba(features)[:, 1])

    args.out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format_version": 1,
        "name": NAME,
        "version": VERSION,
        "table": "customer_rfm",
        "features": FEATURES,
        "output_column": "repeat_purchase_probability",
        "key_columns": ["customer_id"],
        "model_file": "model.skops",
        "task": "probability",
    }
    model_bytes = sio.dumps(model)
    (args.out_dir / "model.skops").write_bytes(model_bytes)
    (args.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    # Prove the processor will accept what was written: same parser, same trusted-types loader.
    parse_manifest((args.out_dir / "manifest.json").read_text())
    load_model(model_bytes)
    print(
        f"trained {NAME} {VERSION} on {len(label):,} customers ({label.mean():.1%} returned within "
        f"{HORIZON_DAYS} days), training AUC {auc:.3f}; wrote {args.out_dir / 'model.skops'} and "
        f"{args.out_dir / 'manifest.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
