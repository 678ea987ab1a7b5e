"""The refresh bench's synthetic orders: exactly the orders asked for, and a history BG/NBD can fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.dataset as ds

from analytics.clv import LOG_BOUND, fit_bg_nbd
from bench.refresh import generate


def test_the_generated_history_identifies_bg_nbd(tmp_path: Path) -> None:
    # GIVEN the bench's generator at a small scale
    paths = generate(tmp_path, 60_000, 10_000, files=48)
    table = ds.dataset(paths, format="parquet").to_table(columns=["customer_id", "order_date"])
    assert table.num_rows == 60_000
    # WHEN each customer's order days are summarised as the refresh does (x, t_x, T in days)
    days = table.group_by(["customer_id", "order_date"]).aggregate([]).to_pandas()
    days["day"] = days["order_date"].map(lambda d: d.toordinal())
    per = days.groupby("customer_id")["day"].agg(["min", "max", "count"])
    x = (per["count"] - 1).to_numpy(float)
    t_x = (per["max"] - per["min"]).to_numpy(float)
    age = (days["day"].max() - per["min"]).to_numpy(float)
    fit = fit_bg_nbd(x, t_x, age)
    # THEN BG/NBD converges inside its bounds: customers differ in how often they buy and when they leave
    assert fit.converged, fit.diagnostics
    assert all(abs(np.log(v)) < LOG_BOUND - 2 for v in (fit.r, fit.a, fit.b)), (fit.r, fit.a, fit.b)
