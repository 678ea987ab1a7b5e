"""``orders``: order exports → clean orders, per-customer RFM with scores, and KMeans segments."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analytics import samples
from analytics._kernels import factorize_ints, row_codes, stable_order
from analytics.base import (
    ModelFact,
    ModelTable,
    OutputSink,
    PipelineResult,
    RefreshContext,
    RefreshResult,
    SourceInfo,
    TableSpec,
    col,
)
from analytics.cleaning import Parsed, parse_date, parse_integer, parse_number
from analytics.contract import (
    Column,
    Contract,
    ContractPipeline,
    RowChecks,
    conform,
    duplicate_rows,
    fixed_schema,
    read_all,
    select_rows,
    with_source_id,
)
from analytics.history_refreshers import refresh_customer_value
from analytics.order_exports import ORDER_EXPORTS
from analytics.profile import PROFILE_TABLE_SPEC
from analytics.spec import DatasetSpec, RefresherSpec
from analytics.threads import single_threaded

CONTRACT = Contract(
    "orders",
    (
        Column(
            "customer_id",
            "id",
            aliases=("Customer ID", "Customer", "Customer number", "Client ID", "Buyer ID", "customerid"),
        ),
        Column(
            "order_date",
            "date",
            aliases=(
                "Order Date",
                "Date",
                "Created at",
                "Order timestamp",
                "Transaction date",
                "Order time",
                "Timestamp",
            ),
        ),
        Column(
            "amount",
            "number",
            aliases=("Amount", "Total", "Order total", "Order value", "Grand total", "Revenue", "Sales"),
        ),
        Column(
            "order_id",
            "id",
            required=False,
            aliases=("Order ID", "Order number", "Transaction ID", "Order no"),
        ),
        Column("quantity", "integer", required=False, aliases=("Qty", "Quantity", "Items", "Units")),
        Column("channel", "label", required=False, aliases=("Sales channel", "Channel", "Source"), lower=True),
        Column("country", "text", required=False, aliases=("Country", "Country code", "Shipping country")),
    ),
)

MODEL_VERSION = "1"
SEED = 20240101
#: Candidate numbers of segments; the silhouette picks one.
K_RANGE = range(3, 7)
#: Below this many customers segments mean nothing; everyone gets segment 0, "All customers".
MIN_CUSTOMERS = 20
#: KMeans fits on a seeded sample this large, then assigns every customer: three features'
#: centroids are settled by a few thousand points, and a 100,000-customer file stays fast.
FIT_SAMPLE = 5_000
#: Customers the silhouette is measured on (it costs the square of this).
SILHOUETTE_SAMPLE = 1_500

ORDERS = TableSpec(
    "orders",
    "order_month",
    "Clean orders, one per order_id (last occurrence kept), partitioned by month (YYYY-MM).",
    pa.schema(
        [
            col("order_id", pa.string(), "order id, null when the export has none"),
            col("customer_id", pa.string(), "customer id, as exported"),
            col("order_date", pa.date32(), "day of the order (time dropped)"),
            col("amount", pa.float64(), "order amount"),
            col("quantity", pa.int64(), "items, null when absent"),
            col("channel", pa.string(), "sales channel, lower-case"),
            col("country", pa.string(), "country"),
            ("source_id", pa.string()),
            col("order_month", pa.string(), "`YYYY-MM` of `order_date`"),
        ]
    ),
    key=("order_id",),
)

ORDER_ITEMS = TableSpec(
    "order_items",
    "order_month",
    "Line items of the orders of exports that list them (Shopify's), one per order × line, for orders kept "
    "in `orders`.",
    pa.schema(
        [
            col("order_id", pa.string(), "order id, as in `orders`"),
            col("line_number", pa.int32(), "the line's position in its order, from 1"),
            col("customer_id", pa.string(), "customer id, as in `orders`"),
            col("order_date", pa.date32(), "day of the order"),
            col("product", pa.string(), "product name, as exported"),
            col("sku", pa.string(), "SKU, null when the export has none"),
            col("quantity", pa.int64(), "units"),
            col("price", pa.float64(), "unit price"),
            ("source_id", pa.string()),
            col("order_month", pa.string(), "`YYYY-MM` of `order_date`"),
        ]
    ),
    key=("order_id", "line_number"),
)

CUSTOMER_RFM = TableSpec(
    "customer_rfm",
    "as_of",
    "One row per customer over every order of the dataset, as of its newest order date: RFM figures, "
    "quintile scores, segment. One snapshot per as_of; a refresh with the same as_of replaces it.",
    pa.schema(
        [
            col("customer_id", pa.string(), "customer"),
            col("first_order_date", pa.date32(), "first order"),
            col("last_order_date", pa.date32(), "last order"),
            col("orders", pa.int64(), "orders (rows)"),
            col("order_days", pa.int64(), "distinct days with an order"),
            col("total_amount", pa.float64(), "sum of amounts"),
            col("avg_order_amount", pa.float64(), "total_amount / orders"),
            col("recency_days", pa.int64(), "as_of − last_order_date"),
            col("tenure_days", pa.int64(), "as_of − first_order_date"),
            col("r_score", pa.int32(), "recency quintile 1–5, 5 = most recent"),
            col("f_score", pa.int32(), "frequency (orders) quintile 1–5, 5 = most orders"),
            col("m_score", pa.int32(), "monetary (total_amount) quintile 1–5, 5 = highest"),
            col("segment_id", pa.int32(), "segment, its id fixed per name (0 All customers, 1 Champions, ...)"),
            col("segment_name", pa.string(), "segment name"),
            col("as_of", pa.date32(), "the dataset's newest order date"),
        ]
    ),
)

CUSTOMER_SEGMENTS = TableSpec(
    "customer_segments",
    "as_of",
    "One row per customer segment as of the dataset's newest order date: size, share and mean recency, "
    "frequency and monetary value.",
    pa.schema(
        [
            col("segment_id", pa.int32(), "segment id"),
            col("segment_name", pa.string(), "segment name"),
            col("customers", pa.int64(), "customers in the segment"),
            col("share", pa.float64(), "customers / all customers of the dataset"),
            col("mean_recency_days", pa.float64(), "mean recency_days"),
            col("mean_frequency", pa.float64(), "mean orders"),
            col("mean_monetary", pa.float64(), "mean total_amount"),
            col("as_of", pa.date32(), "the dataset's newest order date"),
        ]
    ),
)

#: Segment names in the order they are handed out, with their fixed ids (stable across files).
SEGMENT_IDS = {
    "All customers": 0,
    "Champions": 1,
    "Loyal": 2,
    "Promising": 3,
    "New": 4,
    "Need attention": 5,
    "At risk": 6,
    "Hibernating": 7,
}


class OrdersPipeline(ContractPipeline):
    """Contract and cleaning of order exports; RFM and segments come from the refresh stage
    (:func:`refresh_customers`), over every order of the dataset rather than one file's."""

    contract = CONTRACT
    exports = ORDER_EXPORTS

    def tables(self, source: SourceInfo) -> Sequence[TableSpec]:
        """``orders`` (by month), ``order_items`` for an export with line items (Shopify's), and the
        orders' profile."""
        return (ORDERS, ORDER_ITEMS, PROFILE_TABLE_SPEC)

    def run(self, batches: Iterator[pa.RecordBatch], source: SourceInfo, sink: OutputSink) -> PipelineResult:
        """Clean orders, quarantine bad rows, write the clean orders."""
        table = read_all(batches)
        if table is None:
            return PipelineResult(rows_in=0)
        result = PipelineResult(rows_in=table.num_rows)
        prepared, cols = self.columns(table, source, result, sink)
        table = prepared.table
        n = table.num_rows
        column = {name: table.column(source_name) for name, source_name in cols.items()}
        # The order ids also come hashed from the parse threads, for the duplicate check.
        parsed = self.contract.parse(column, source, hashed=("order_id",))
        customer = parsed["customer_id"]
        order_id_hashes: np.ndarray | None = None
        order_ids_distinct = False
        if "order_id" in parsed:
            order_id_hashes, order_ids_distinct = parsed["order_id"].hashes, parsed["order_id"].distinct
        order_date = parsed["order_date"]
        decision = order_date.date_decision
        amount = parsed["amount"]
        amount_format = amount.number_format

        checks = RowChecks(n)
        checks.add("missing_customer_id", customer.missing, "customer_id is empty; every order needs its customer")
        checks.add("missing_date", order_date.missing, "order_date is empty")
        checks.add(
            "invalid_date",
            order_date.invalid,
            "order_date",
            value_column=cols["order_date"],
            suffix=" is not a date or timestamp in ISO (2024-01-31 13:45:00), US (01/31/2024) or EU (31.01.2024) form",
        )
        checks.add("missing_value", amount.missing, "amount is empty")
        checks.add("invalid_number", amount.invalid, "amount", value_column=cols["amount"], suffix=" is not a number")
        amount_values = amount.values.to_numpy(zero_copy_only=False).astype(float)
        checks.add(
            "negative_amount",
            amount_values < 0,
            "amount",
            value_column=cols["amount"],
            suffix=" is negative; send refunds and reversals as their own dataset, not as orders",
        )
        quantity: pa.Array = pa.nulls(n, pa.int64())
        if "quantity" in parsed:
            q: Parsed = parsed["quantity"]
            checks.add(
                "invalid_number",
                q.invalid,
                "quantity",
                value_column=cols["quantity"],
                suffix=" is not a whole number",
            )
            q_values = q.values.to_numpy(zero_copy_only=False).astype(float)
            checks.add(
                "negative_value",
                q_values < 0,
                "quantity",
                value_column=cols["quantity"],
                suffix=" is negative",
            )
            quantity = q.values
        keep = self.quarantine_and_check(table, checks, sink, result, prepared)

        def optional(name: str) -> pa.Array:
            return parsed[name].values if name in parsed else pa.nulls(n, pa.string())

        day = np.asarray(pc.fill_null(order_date.values.view(pa.int32()), 0).to_numpy(zero_copy_only=False))
        month_code = months_of_days(day)
        month = month_labels(month_code, order_date.missing | order_date.invalid)
        clean_all = pa.table(
            {
                "order_id": optional("order_id"),
                "customer_id": customer.values,
                "order_date": order_date.values,
                "amount": amount.values,
                "quantity": quantity,
                "channel": optional("channel"),
                "country": optional("country"),
                "order_month": month,
            }
        )
        keyed, key = dedup_key(clean_all)
        kept, exact, superseded = duplicate_rows(
            keyed,
            key,
            keep,
            partition_code=month_code,
            key_hashes=order_id_hashes if key == ["order_id"] else None,
            key_unique=order_ids_distinct and key == ["order_id"],
        )
        result.duplicates_dropped = exact + superseded
        orders_out = select_rows(keyed, kept)
        # The profile hashes each order id once: the parse threads hashed them for the duplicate check.
        known = {"order_id": order_id_hashes[kept]} if order_id_hashes is not None else None
        self.write_clean(sink, ORDERS, conform(with_source_id(orders_out, source.source_id), ORDERS), source, known)
        if "order_items" in prepared.extra:
            items = order_items(prepared.extra["order_items"], kept, source)
            sink.write(ORDER_ITEMS.name, conform(with_source_id(items, source.source_id), ORDER_ITEMS))
            result.export_facts["order_items"] = items.num_rows
        result.date_decision = decision
        result.models.append(
            ModelFact(
                "cleaning",
                MODEL_VERSION,
                {
                    "date_order": decision.order if decision else "ISO",
                    "date_order_basis": decision.basis if decision else "no ambiguous dates",
                    "decimal_comma_amount": amount_format.decimal_comma,
                    "exact_duplicates": exact,
                    "superseded_orders": superseded,
                },
            )
        )
        return result


def order_items(items: pa.Table, kept_orders: np.ndarray, source: SourceInfo) -> pa.Table:
    """The line items (strings, as a recognised export's fold gives them, each with ``_order``, the row
    of its order in the folded table) of the orders in ``kept_orders``, typed.

    A line's order checks (customer, date, amount) were made on the order's row; a line whose own
    quantity or price is not a number keeps the line with that value null.
    """
    keep = pc.is_in(items.column("_order"), value_set=pa.array(kept_orders, pa.int64()))
    items = items.filter(keep)
    date, _ = parse_date(items.column("order_date"), configured_order=source.settings.get("date_order"))
    day = np.asarray(pc.fill_null(date.values.view(pa.int32()), 0).to_numpy(zero_copy_only=False))
    return pa.table(
        {
            "order_id": items.column("order_id"),
            "line_number": pc.cast(items.column("line_number"), pa.int32()),
            "customer_id": items.column("customer_id"),
            "order_date": date.values,
            "product": items.column("product"),
            "sku": items.column("sku"),
            "quantity": parse_integer(items.column("quantity")).values,
            "price": parse_number(items.column("price"))[0].values,
            "order_month": month_labels(months_of_days(day), date.missing | date.invalid),
        }
    )


def months_of_days(day: np.ndarray) -> np.ndarray:
    """Months since 1970 (int64) of days since 1970, converted once per day of the file's range."""
    if not len(day):
        return np.zeros(0, dtype=np.int64)
    low, high = int(day.min()), int(day.max())
    table = np.arange(low, high + 1).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return table[day - low]


def month_labels(month_code: np.ndarray, null: np.ndarray) -> pa.Array:
    """``YYYY-MM`` per row from months since 1970, formatted once per month of the file's range."""
    if not len(month_code):
        return pa.array([], pa.string())
    low, high = int(month_code.min()), int(month_code.max())
    months = np.arange(low, high + 1)
    labels = pa.array(np.datetime_as_string(months.astype("datetime64[M]"), unit="M"), pa.string())
    return labels.take(pa.array(month_code - low, mask=null))


def dedup_key(clean: pa.Table) -> tuple[pa.Table, list[str]]:
    """The table to deduplicate and its key: ``order_id`` where there is one.

    A row without an order_id is keyed by all its values instead, so only an exact copy of it
    merges with it; a file without any order_id therefore only loses exact duplicates.
    """
    order_id = clean.column("order_id")
    nulls = pc.is_null(order_id)
    data_columns = [c for c in clean.column_names if c != "source_id"]
    if not pc.any(nulls).as_py():
        return clean, ["order_id"]
    if pc.all(nulls).as_py():
        return clean, data_columns
    codes = pa.array(row_codes(clean, data_columns))
    row_key = pc.binary_join_element_wise("\x00", pc.cast(codes, pa.string()), "")
    keyed = clean.append_column("_key", pc.coalesce(order_id, row_key))
    return keyed, ["_key"]


@dataclass(frozen=True)
class Segmentation:
    """KMeans over scaled log-RFM: a label per customer and what was chosen."""

    labels: np.ndarray
    names: dict[int, str]
    k: int
    silhouette: float | None
    tried: dict[int, float]


def name_segments(recency: np.ndarray, frequency: np.ndarray, monetary: np.ndarray) -> list[str]:
    """Names for clusters from the ranks of their centroids (mean recency, frequency, monetary).

    Ranks are scaled to -1 (worst) .. 1 (best; for recency, most recent). Names are handed out in
    a fixed order, each to the best remaining cluster that qualifies: Champions (best R+F+M),
    Hibernating (worst R+F+M of the less recent half), At risk (not recent but frequent/valuable),
    New (recent, few orders), Loyal (frequent), Promising (recent); any cluster left is "Need attention".
    """
    from scipy.stats import rankdata  # the refresh's; a file of orders never pays for scipy

    k = len(recency)

    def scaled(values: np.ndarray) -> np.ndarray:
        return np.zeros(k) if k == 1 else (rankdata(values) - 1) / (k - 1) * 2 - 1

    r, f, m = scaled(-np.asarray(recency)), scaled(np.asarray(frequency)), scaled(np.asarray(monetary))
    names: list[str | None] = [None] * k
    rules: list[tuple[str, Callable[[int], bool], Callable[[int], float]]] = [
        ("Champions", lambda i: True, lambda i: r[i] + f[i] + m[i]),
        # A cluster that ordered recently is not asleep, however few its orders (with k = 3, recent
        # one-order customers tie on R+F+M with lapsed ones).
        ("Hibernating", lambda i: r[i] < 0, lambda i: -(r[i] + f[i] + m[i])),
        ("At risk", lambda i: r[i] < 0 and f[i] + m[i] > 0, lambda i: f[i] + m[i] - 2 * r[i]),
        ("New", lambda i: r[i] > 0 and f[i] < 0, lambda i: r[i] - f[i]),
        ("Loyal", lambda i: f[i] >= 0, lambda i: f[i] + r[i]),
        ("Promising", lambda i: r[i] >= 0, lambda i: r[i] + m[i]),
    ]
    for name, qualifies, score in rules:
        free = [i for i in range(k) if names[i] is None and qualifies(i)]
        if free:
            # Ties go to the lower cluster index, which KMeans made deterministic by its seed.
            best = max(free, key=lambda i: (score(i), -i))
            names[best] = name
    return [name if name is not None else "Need attention" for name in names]


def segment_customers(
    recency_days: np.ndarray, orders: np.ndarray, total_amount: np.ndarray, seed: int = SEED
) -> Segmentation:
    """KMeans segments of customers; see :func:`_segment_customers`.

    Runs single-threaded: on a few thousand points OpenMP's thread start-up and spin-waiting cost
    far more than the work (seconds instead of milliseconds on a busy 2-vCPU Lambda).
    """
    with single_threaded():
        return _segment_customers(recency_days, orders, total_amount, seed)


def _segment_customers(
    recency_days: np.ndarray, orders: np.ndarray, total_amount: np.ndarray, seed: int
) -> Segmentation:
    """KMeans on standardised log1p(recency, orders, total amount), k chosen by silhouette.

    Each k in :data:`K_RANGE` is fitted (seeded, on at most :data:`FIT_SAMPLE` customers) and scored
    by the silhouette on a seeded sample; the best k labels every customer. Clusters get names from
    :func:`name_segments`; segment ids are fixed per name (:data:`SEGMENT_IDS`), and two clusters
    with the same fallback name share it.
    """
    # scikit-learn is the refresh's; importing it costs a file of another dataset nothing.
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances, silhouette_score
    from sklearn.preprocessing import StandardScaler

    n = len(recency_days)
    features = np.column_stack(
        [np.log1p(np.maximum(recency_days, 0)), np.log1p(orders), np.log1p(np.maximum(total_amount, 0))]
    ).astype(float)
    if n < MIN_CUSTOMERS:
        return Segmentation(np.zeros(n, dtype=np.int32), {0: "All customers"}, 1, None, {})

    scaled = StandardScaler().fit_transform(features)
    rng = np.random.default_rng(seed)
    fit_rows = scaled if n <= FIT_SAMPLE else scaled[np.sort(rng.choice(n, FIT_SAMPLE, replace=False))]
    # KMeans needs more distinct points than clusters (many one-order customers look alike).
    distinct = len(np.unique(np.round(fit_rows, 9), axis=0))
    candidates = [k for k in K_RANGE if k < distinct]
    if not candidates:
        return Segmentation(np.zeros(n, dtype=np.int32), {0: "All customers"}, 1, None, {})
    tried: dict[int, float] = {}
    models: dict[int, Any] = {}
    # The customers silhouette_score(fit_rows, labels, sample_size=..., random_state=seed) would
    # sample: the same for every k, so their distances are computed once and shared.
    sample = np.random.RandomState(seed).permutation(len(fit_rows))[: min(SILHOUETTE_SAMPLE, len(fit_rows))]
    distances = pairwise_distances(fit_rows[sample])
    for k in candidates:
        model = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(fit_rows)
        labels = model.labels_
        if len(np.unique(labels)) < 2:
            continue
        tried[k] = float(silhouette_score(distances, labels[sample], metric="precomputed"))
        models[k] = model
    if not tried:
        return Segmentation(np.zeros(n, dtype=np.int32), {0: "All customers"}, 1, None, {})
    # Highest silhouette; a tie goes to the smaller k, the simpler story.
    best_k = max(tried, key=lambda k: (round(tried[k], 12), -k))
    model = models[best_k]
    cluster = model.predict(scaled)
    centroid_stats = [
        (recency_days[cluster == c].mean(), orders[cluster == c].mean(), total_amount[cluster == c].mean())
        if np.any(cluster == c)
        else (np.inf, 0.0, 0.0)
        for c in range(best_k)
    ]
    stats = np.array(centroid_stats, dtype=float)
    names = name_segments(stats[:, 0], stats[:, 1], stats[:, 2])
    ids = np.array([SEGMENT_IDS[name] for name in names], dtype=np.int32)
    return Segmentation(ids[cluster], {int(ids[c]): names[c] for c in range(best_k)}, best_k, tried[best_k], tried)


def quintile_scores(values: np.ndarray, tie_break: np.ndarray) -> np.ndarray:
    """Scores 1-5 by rank: the lowest fifth of ``values`` gets 1. Equal values are ordered by
    ``tie_break`` (the customer id), so the same file always gives the same scores."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    order = np.lexsort((tie_break, values))
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    return (1 + (position * 5) // n).astype(np.int32)


#: Largest bitmap (bytes) :func:`_distinct_days` uses; beyond it, hashing is cheaper.
_DAY_BITMAP_BYTES = 64 << 20


def _distinct_days(idx: np.ndarray, days: np.ndarray, k: int) -> np.ndarray:
    """How many distinct days each of ``k`` customers ordered on (``idx`` its customer per order).

    A bit per customer and day of the file's range, set per order and counted per customer:
    cheaper than hashing a million (customer, day) pairs.
    """
    low = int(days.min())
    span = int(days.max()) - low + 1
    row_bytes = (span + 7) // 8
    offset = days - low
    if k * row_bytes > _DAY_BITMAP_BYTES:
        distinct = pd.unique(idx * span + offset)
        return np.bincount(distinct // span, minlength=k).astype(np.int64)
    bits = np.zeros(k * row_bytes, dtype=np.uint8)
    np.bitwise_or.at(bits, idx * row_bytes + (offset >> 3), np.left_shift(1, offset & 7).astype(np.uint8))
    return np.bitwise_count(bits.reshape(k, row_bytes)).sum(axis=1, dtype=np.int64)


def _quintiles_in_tie_order(values: np.ndarray) -> np.ndarray:
    """:func:`quintile_scores` of ``values`` already in tie-break order (tie-break = position)."""
    n = len(values)
    position = np.empty(n, dtype=np.int64)
    position[stable_order(values)] = np.arange(n)
    return (1 + (position * 5) // n).astype(np.int32)


def customer_tables(clean: pa.Table) -> tuple[pa.Table, pa.Table, list[ModelFact]]:
    """``customer_rfm`` and ``customer_segments`` from clean orders (one row per order), and facts."""
    encoded = pc.dictionary_encode(clean.column("customer_id")).combine_chunks()
    return rfm_tables(
        encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        encoded.dictionary,
        clean.column("order_date").combine_chunks().view(pa.int32()).to_numpy().astype(np.int64),
        clean.column("amount").to_numpy().astype(float),
    )


def rfm_tables(
    customer: np.ndarray, customer_ids: pa.Array, days: np.ndarray, amount: np.ndarray
) -> tuple[pa.Table, pa.Table, list[ModelFact]]:
    """RFM and segments from one entry per clean order.

    ``customer`` indexes ``customer_ids`` (ids not ordered from are left out), ``days`` are the
    order dates as days since 1970 and ``amount`` the amounts.
    """
    if len(customer) == 0:
        return rfm_from_features(customer_features_table([], [], [], [], [], []))
    idx, used = factorize_ints(customer)
    ids = customer_ids.take(pa.array(used))
    k = len(ids)
    first = np.full(k, np.iinfo(np.int64).max)
    last = np.full(k, np.iinfo(np.int64).min)
    np.minimum.at(first, idx, days)
    np.maximum.at(last, idx, days)
    features = customer_features_table(
        ids,
        first,
        last,
        np.bincount(idx, minlength=k).astype(np.int64),
        _distinct_days(idx, days, k),
        np.bincount(idx, weights=amount, minlength=k),
    )
    return rfm_from_features(features)


#: Per-customer features the refresh computes over the whole ``orders`` history (Athena SQL; the
#: ``orders`` view holds each order id once, from the newest file that has it). One row per
#: customer: what scikit-learn sees grows with customers, not with orders.
CUSTOMER_FEATURES_SQL = """
SELECT customer_id,
       min(order_date) AS first_order_date,
       max(order_date) AS last_order_date,
       count(*) AS orders,
       count(DISTINCT order_date) AS order_days,
       sum(amount) AS total_amount
FROM orders
WHERE customer_id IS NOT NULL AND order_date IS NOT NULL AND amount IS NOT NULL
GROUP BY customer_id
"""

CUSTOMER_FEATURES = pa.schema(
    [
        ("customer_id", pa.string()),
        ("first_order_date", pa.date32()),
        ("last_order_date", pa.date32()),
        ("orders", pa.int64()),
        ("order_days", pa.int64()),
        ("total_amount", pa.float64()),
    ]
)


def customer_features_table(ids: Any, first: Any, last: Any, orders: Any, order_days: Any, total: Any) -> pa.Table:
    """The features table (:data:`CUSTOMER_FEATURES`) from per-customer arrays; dates as days since 1970."""
    return pa.table(
        {
            "customer_id": pa.array(ids, pa.string()),
            "first_order_date": pa.array(np.asarray(first, dtype=np.int64).astype(np.int32)).view(pa.date32()),
            "last_order_date": pa.array(np.asarray(last, dtype=np.int64).astype(np.int32)).view(pa.date32()),
            "orders": pa.array(np.asarray(orders, dtype=np.int64)),
            "order_days": pa.array(np.asarray(order_days, dtype=np.int64)),
            "total_amount": pa.array(np.asarray(total, dtype=float)),
        },
        schema=CUSTOMER_FEATURES,
    )


def _days(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return np.asarray(array.cast(pa.date32()).view(pa.int32()).to_numpy(zero_copy_only=False), dtype=np.int64)


def rfm_from_features(features: pa.Table) -> tuple[pa.Table, pa.Table, list[ModelFact]]:
    """``customer_rfm`` and ``customer_segments`` from one row of :data:`CUSTOMER_FEATURES` per
    customer, as of the newest order date among them, and the segmentation fact.

    Too few customers is a fact that says so, never a model fitted on nothing: without customers
    both tables are empty (the caller writes nothing); below :data:`MIN_CUSTOMERS` everyone is in
    segment 0, "All customers".
    """
    features = features.select(CUSTOMER_FEATURES.names).cast(CUSTOMER_FEATURES)
    k = features.num_rows
    if k == 0:
        fact = ModelFact(
            "customer_segmentation",
            MODEL_VERSION,
            {"customers": 0, "k": None, "note": "no orders in the dataset's history; nothing to segment"},
        )
        return fixed_schema(CUSTOMER_RFM).empty_table(), fixed_schema(CUSTOMER_SEGMENTS).empty_table(), [fact]
    # Output sorted by customer id; scores break ties on the same order.
    features = features.take(pc.sort_indices(features.column("customer_id")))
    ids_sorted = features.column("customer_id").combine_chunks()
    first = _days(features.column("first_order_date"))
    last = _days(features.column("last_order_date"))
    orders = features.column("orders").to_numpy().astype(np.int64)
    order_days = features.column("order_days").to_numpy().astype(np.int64)
    total = features.column("total_amount").to_numpy().astype(float)
    as_of = int(last.max())
    recency = as_of - last
    tenure = as_of - first
    avg = total / orders
    seg = segment_customers(recency.astype(float), orders.astype(float), total)

    # quintile_scores(values, rank by customer id), computed in customer-id order: there a stable
    # sort of the values alone breaks ties by customer id.
    r_scores = _quintiles_in_tie_order(-recency)
    f_scores = _quintiles_in_tie_order(orders)
    m_scores = _quintiles_in_tie_order(total)

    as_of_date = pa.scalar(as_of, pa.int32()).cast(pa.date32())
    labels = seg.labels
    names_by_id = seg.names
    rfm = pa.table(
        {
            "customer_id": ids_sorted,
            "first_order_date": features.column("first_order_date"),
            "last_order_date": features.column("last_order_date"),
            "orders": pa.array(orders),
            "order_days": pa.array(order_days),
            "total_amount": pa.array(total),
            "avg_order_amount": pa.array(avg),
            "recency_days": pa.array(recency),
            "tenure_days": pa.array(tenure),
            "r_score": pa.array(r_scores),
            "f_score": pa.array(f_scores),
            "m_score": pa.array(m_scores),
            "segment_id": pa.array(labels, pa.int32()),
            "segment_name": pa.array(
                np.array([names_by_id.get(i) for i in range(max(SEGMENT_IDS.values()) + 1)], dtype=object)[labels],
                pa.string(),
            ),
            "as_of": pa.repeat(as_of_date, k),
        }
    )
    seg_ids = sorted(names_by_id)
    counts = np.array([np.count_nonzero(seg.labels == s) for s in seg_ids], dtype=np.int64)

    def mean(values: np.ndarray, s: int) -> float:
        chosen = values[seg.labels == s]
        return float(chosen.mean()) if len(chosen) else float("nan")

    segments = pa.table(
        {
            "segment_id": pa.array(seg_ids, pa.int32()),
            "segment_name": pa.array([names_by_id[s] for s in seg_ids], pa.string()),
            "customers": pa.array(counts),
            "share": pa.array(counts / k),
            "mean_recency_days": pa.array([mean(recency.astype(float), s) for s in seg_ids]),
            "mean_frequency": pa.array([mean(orders.astype(float), s) for s in seg_ids]),
            "mean_monetary": pa.array([mean(total, s) for s in seg_ids]),
            "as_of": pa.repeat(as_of_date, len(seg_ids)),
        }
    )
    metrics: dict[str, float | int | str | bool | None] = {
        "method": "KMeans on standardised log1p(recency, frequency, monetary)",
        "customers": k,
        "as_of": str(as_of_date),
        "k": seg.k,
        "silhouette": None if seg.silhouette is None else round(seg.silhouette, 6),
        "k_tried": ",".join(f"{kk}:{s:.4f}" for kk, s in sorted(seg.tried.items())) or "none",
        "segments": ",".join(f"{names_by_id[s]}={c}" for s, c in zip(seg_ids, counts.tolist(), strict=True)),
        "seed": SEED,
    }
    if k < MIN_CUSTOMERS:
        metrics["note"] = (
            f"{k} customer(s) in the dataset's history, fewer than the {MIN_CUSTOMERS} segments need: "
            "everyone is in segment 0, All customers"
        )
    fact = ModelFact("customer_segmentation", MODEL_VERSION, metrics)
    return conform(rfm, CUSTOMER_RFM), conform(segments, CUSTOMER_SEGMENTS), [fact]


def refresh_customers(query: Callable[[str], pa.Table], context: RefreshContext | None = None) -> RefreshResult:
    """The ``orders`` refresher: per-customer features by SQL over every order, then RFM and segments.

    ``query`` runs Athena SQL over the curated tables (DuckDB in the function, or Athena) and
    returns the result; nothing here reads rows of orders.
    """
    rfm, segments, facts = rfm_from_features(query(CUSTOMER_FEATURES_SQL))
    if rfm.num_rows == 0:
        return RefreshResult(tables=(), facts=tuple(facts))
    as_of = rfm.column("as_of")[0].as_py()
    return RefreshResult(
        tables=(ModelTable(CUSTOMER_RFM, rfm, as_of), ModelTable(CUSTOMER_SEGMENTS, segments, as_of)),
        facts=tuple(facts),
    )


__all__ = [
    "CONTRACT",
    "CUSTOMER_FEATURES",
    "CUSTOMER_FEATURES_SQL",
    "CUSTOMER_RFM",
    "CUSTOMER_SEGMENTS",
    "ORDERS",
    "OrdersPipeline",
    "Segmentation",
    "customer_features_table",
    "customer_tables",
    "name_segments",
    "quintile_scores",
    "refresh_customers",
    "rfm_from_features",
    "rfm_tables",
    "segment_customers",
]


SPEC = DatasetSpec(
    name="orders",
    contract=CONTRACT,
    pipeline=OrdersPipeline,
    tables=(ORDERS, ORDER_ITEMS, PROFILE_TABLE_SPEC),
    refreshers=(
        RefresherSpec("customer_rfm", refresh_customers, ("orders",), ("customer_rfm", "customer_segments")),
        RefresherSpec("customer_value", refresh_customer_value, ("orders",), ("customer_value",)),
    ),
    model_tables=(CUSTOMER_RFM, CUSTOMER_SEGMENTS),
    exports=ORDER_EXPORTS,
    model_keys={"customer_rfm": ("customer_id",), "customer_segments": ("segment_id",)},
    sample=samples.orders_csv,
)
