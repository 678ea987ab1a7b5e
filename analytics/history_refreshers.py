"""Refreshers that feed the models over history their SQL features (see ``analytics.registry``).

Each is pure: it asks ``query`` (Athena SQL over the curated tables, run by the refresh stage on
DuckDB or Athena) for per-entity aggregates and hands them to the model's own module.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from analytics.base import ModelFact, ModelTable, RefreshResult
from analytics.clv import CUSTOMER_VALUE, MODEL_VERSION, customer_value

#: Per-customer aggregates for BG/NBD and Gamma-Gamma (``analytics.clv.CUSTOMER_AGGREGATES``): a
#: purchase is an order day, and the first day's spend is kept apart (Gamma-Gamma models repeat spend).
CUSTOMER_AGGREGATES_SQL = """
WITH days AS (
    SELECT customer_id, order_date, sum(amount) AS amount
    FROM orders
    WHERE customer_id IS NOT NULL AND order_date IS NOT NULL AND amount IS NOT NULL
    GROUP BY customer_id, order_date
)
SELECT customer_id,
       min(order_date) AS first_order_date,
       max(order_date) AS last_order_date,
       count(*) AS order_days,
       sum(amount) AS total_amount,
       min_by(amount, order_date) AS first_day_amount
FROM days
GROUP BY customer_id
"""


def refresh_customer_value(query: Callable[[str], pa.Table]) -> RefreshResult:
    """``orders`` → ``customer_value`` as of the newest order date; a fit that cannot be made (too
    few repeat customers, no convergence) writes nothing and its facts say why."""
    aggregates = query(CUSTOMER_AGGREGATES_SQL)
    if aggregates.num_rows == 0:
        fact = ModelFact("customer_value", MODEL_VERSION, {"customers": 0, "note": "no orders in the history"})
        return RefreshResult(facts=(fact,))
    as_of = pc.max(aggregates.column("last_order_date")).as_py()
    result = customer_value(aggregates, as_of)
    if result.keep_previous:
        return RefreshResult(facts=result.facts)
    return RefreshResult(tables=(ModelTable(CUSTOMER_VALUE, result.table, as_of),), facts=result.facts)
