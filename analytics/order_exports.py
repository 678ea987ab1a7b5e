"""Shops' and payment providers' own exports, recognised as downloaded and mapped onto ``orders``.

Written from the vendors' public descriptions of their export columns (``documented_at``):

- Shopify's orders export has one row per line item; the order's own fields (total, dates,
  addresses, financial status) are on its first row, and ``Name`` (``#1001``) on every row. It is
  folded into one row per order with the order's own ``Total`` (less ``Refunded Amount``) and the
  sum of its line items' quantities; the line items themselves go to ``order_items``. Voided and
  fully refunded orders are left out (counted). The customer is the ``Email``
  (pseudonymised with the lake's other personal data), as the export has no customer id.
- WooCommerce's Analytics → Orders download: one row per order; failed, cancelled, pending, draft
  and refunded orders are not sales and are left out (counted in the event's ``export`` facts).
- Stripe's payments export: one row per payment; the customer is ``Customer ID``, or the
  ``Customer Email`` of a guest payment; failed payments and full refunds are left out (counted), a
  partly refunded payment counts what was kept.

Rows left out are never quarantined (they are not bad rows) and stay in raw/; a rejected order's
quarantine rows are its file rows, every line item with the order's reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analytics.exports import KnownExport, Reshaped, first_header

#: Columns of the line items Shopify's fold hands to the orders pipeline, as strings.
LINE_ITEM_COLUMNS = ("order_id", "line_number", "customer_id", "order_date", "product", "sku", "quantity", "price")


def _text(table: pa.Table, name: str | None) -> pa.Array:
    """A column as strings with empty values null; all nulls when ``name`` is None or absent."""
    if name is None or name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    values = pc.utf8_trim_whitespace(table.column(name).combine_chunks().cast(pa.string()))
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def _header(table: pa.Table, pattern: str) -> str | None:
    return first_header(table.column_names, pattern)


def _number(table: pa.Table, name: str | None) -> np.ndarray:
    """A money or count column as floats (NaN where empty or not a number); the contract checks it later."""
    text = pd.Series(_text(table, name).to_pandas(), dtype=object)
    return np.asarray(pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce"), dtype=float)


def _orders_of_rows(names: np.ndarray, own: np.ndarray) -> np.ndarray:
    """The order of each line-item row: rows sharing a ``Name`` are one order wherever they sit; a row
    without a Name starts a nameless order when it carries order fields, else joins the row before."""
    order = np.empty(len(names), dtype=np.int64)
    by_name: dict[str, int] = {}
    current = -1
    count = 0
    for i, name in enumerate(names):  # one pass in Python: line-item exports are thousands of rows
        if name is None:
            if own[i] or current < 0:
                current, count = count, count + 1
        else:
            found = by_name.get(name)
            if found is None:
                found = by_name[name] = count
                count += 1
            current = found
        order[i] = current
    return order


def fold_shopify(table: pa.Table, mapping: Mapping[str, str]) -> Reshaped:
    """Line items folded into one row per order (its own total, quantities summed); the lines go to order_items.

    An order's own fields (total, date, status) are on one of its rows, its ``Name`` on all of them.
    Voided orders (never charged) and fully refunded ones are left out as not sales; a partly
    refunded order counts what was kept (``Total`` less ``Refunded Amount``).
    """
    n = table.num_rows
    names = np.asarray(_text(table, mapping.get("order_id")).to_numpy(zero_copy_only=False), dtype=object)
    total = _number(table, mapping.get("amount"))
    created = _text(table, mapping.get("order_date"))
    own = pc.fill_null(pc.is_valid(created), False).to_numpy(zero_copy_only=False) | ~np.isnan(total)
    order = _orders_of_rows(names, own)
    orders = int(order.max()) + 1 if n else 0
    frame = pd.DataFrame({"order": order, "own": own, "row": np.arange(n)})
    first_own = frame[frame["own"]].groupby("order")["row"].min()
    first_any = frame.groupby("order")["row"].min()
    rep = first_any.copy()
    rep.loc[first_own.index] = first_own
    rep_rows = rep.sort_index().to_numpy()
    # what was charged and kept: voided orders never were, refunds give money back
    status = pc.utf8_lower(pc.fill_null(_text(table, _header(table, r"financial_status")), ""))
    status_rep = np.asarray(status.to_numpy(zero_copy_only=False), dtype=object)[rep_rows]
    refunded = np.nan_to_num(_number(table, _header(table, r"refunded_amount"))[rep_rows])
    amount = total[rep_rows] - refunded
    voided = status_rep == "voided"
    fully_refunded = (refunded > 0) & (amount <= 0.005)
    kept = ~(voided | fully_refunded)
    new_index = np.where(kept, np.cumsum(kept) - 1, -1)
    origin = new_index[order]
    folded = table.take(pa.array(rep_rows[kept]))
    quantities = pd.Series(_number(table, _header(table, r"lineitem_quantity"))).groupby(order).sum(min_count=1)
    per_order = quantities.reindex(range(orders)).to_numpy()[kept]
    if (q := _header(table, r"lineitem_quantity")) is not None:
        text = [None if np.isnan(v) else str(int(v)) for v in per_order]
        folded = folded.set_column(folded.column_names.index(q), q, pa.array(text, pa.string()))
    if (a := mapping.get("amount")) is not None:
        net = amount[kept]
        text = [None if np.isnan(v) else f"{v:.2f}" for v in net]
        folded = folded.set_column(folded.column_names.index(a), a, pa.array(text, pa.string()))
    # The line items: each with its order's name, customer and day, numbered in file order.
    lines = origin >= 0
    line_number = frame.groupby("order").cumcount().to_numpy() + 1
    customer = np.asarray(_text(table, mapping.get("customer_id")).to_numpy(zero_copy_only=False), dtype=object)
    created_text = np.asarray(created.to_numpy(zero_copy_only=False), dtype=object)
    order_name = names[rep_rows][order]
    items = pa.table(
        {
            "order_id": pa.array(order_name[lines], pa.string()),
            "line_number": pa.array(line_number[lines].astype(str), pa.string()),
            "customer_id": pa.array(customer[rep_rows][order][lines], pa.string()),
            "order_date": pa.array(created_text[rep_rows][order][lines], pa.string()),
            "product": _text(table, _header(table, r"lineitem_name")).filter(pa.array(lines)),
            "sku": _text(table, _header(table, r"lineitem_sku")).filter(pa.array(lines)),
            "quantity": _text(table, _header(table, r"lineitem_quantity")).filter(pa.array(lines)),
            "price": _text(table, _header(table, r"lineitem_price")).filter(pa.array(lines)),
            "_order": pa.array(origin[lines]),
        }
    )
    facts: dict[str, int | str] = {"line_items": n, "orders": int(kept.sum())}
    if voided.any():
        facts["voided"] = int(voided.sum())
    if fully_refunded.any():
        facts["refunded"] = int(fully_refunded.sum())
    return Reshaped(folded, origin, extra={"order_items": items}, facts=facts)


def _status_filter(status_pattern: str, not_sales: frozenset[str]) -> Callable[[pa.Table], np.ndarray]:
    def keep(table: pa.Table) -> np.ndarray:
        header = _header(table, status_pattern)
        if header is None:
            return np.ones(table.num_rows, dtype=bool)
        status = pc.utf8_lower(pc.fill_null(_text(table, header), ""))
        return ~np.asarray(pc.is_in(status, value_set=pa.array(sorted(not_sales))).to_numpy(zero_copy_only=False))

    return keep


_WOO_NOT_SALES = frozenset({"failed", "cancelled", "pending", "pending payment", "draft", "refunded", "trash"})


def _woocommerce(table: pa.Table, mapping: Mapping[str, str]) -> Reshaped:
    """Failed, cancelled, pending, draft and refunded orders left out (not sales; counted)."""
    keep = _status_filter(r"status", _WOO_NOT_SALES)(table)
    dropped = int((~keep).sum())
    return Reshaped.kept(table, keep, {"not_sales": dropped} if dropped else {})


def _stripe(table: pa.Table, mapping: Mapping[str, str]) -> Reshaped:
    """Failed, canceled and incomplete payments and full refunds left out (counted); a partial refund
    counts what was kept; a guest payment's customer is its e-mail."""
    keep = _status_filter(r"status", frozenset({"failed", "canceled", "cancelled", "incomplete"}))(table)
    failed = int((~keep).sum())
    out = table
    if (a := mapping.get("amount")) is not None:
        net = _number(table, a) - np.nan_to_num(_number(table, _header(table, r"amount_refunded")))
        refunded = keep & (net <= 0.005) & (np.nan_to_num(_number(table, _header(table, r"amount_refunded"))) > 0)
        keep = keep & ~refunded
        text = [None if np.isnan(v) else f"{v:.2f}" for v in net]
        out = out.set_column(out.column_names.index(a), a, pa.array(text, pa.string()))
    else:
        refunded = np.zeros(table.num_rows, dtype=bool)
    customer = mapping.get("customer_id")
    email = _header(out, r"customer_email")
    if customer is not None and email is not None and customer != email:
        merged = pc.coalesce(_text(out, customer), _text(out, email))
        out = out.set_column(out.column_names.index(customer), customer, merged)
    facts = {k: v for k, v in {"not_sales": failed, "refunded": int(refunded.sum())}.items() if v}
    return Reshaped.kept(out, keep, facts)


SHOPIFY_ORDERS = KnownExport(
    name="shopify_orders",
    title="Shopify orders export",
    signature=(r"name", r"email", r"financial_status", r"lineitem_quantity", r"lineitem_name"),
    columns={
        "order_id": r"name",
        "customer_id": r"email",
        "order_date": r"created_at",
        "amount": r"total",
        "quantity": r"lineitem_quantity",
        "channel": r"source",
        "country": r"billing_country|shipping_country",
    },
    reshape=fold_shopify,
    documented_at="https://help.shopify.com/manual/fulfillment/managing-orders/exporting-orders (order CSV columns)",
)

WOOCOMMERCE_ORDERS = KnownExport(
    name="woocommerce_orders",
    title="WooCommerce Analytics orders download",
    signature=(r"order", r"status", r"customer", r"net_sales", r"items_sold"),
    columns={
        "order_id": r"order",
        "customer_id": r"customer",
        "order_date": r"date",
        "amount": r"net_sales",
        "quantity": r"items_sold",
    },
    constants={"channel": "woocommerce"},
    reshape=_woocommerce,
    # the download's customer is the person's name
    personal={"customer_id": "name"},
    documented_at="https://woocommerce.com/document/woocommerce-analytics/orders-report/ (download columns)",
)

STRIPE_PAYMENTS = KnownExport(
    name="stripe_payments",
    title="Stripe payments export",
    signature=(r"id", r"created_date_utc|created_utc", r"amount", r"status", r"customer_id|customer_email"),
    columns={
        "order_id": r"id",
        "customer_id": r"customer_id|customer_email",
        "order_date": r"created_date_utc|created_utc",
        "amount": r"amount",
    },
    constants={"channel": "stripe"},
    reshape=_stripe,
    documented_at="https://docs.stripe.com/reports/payments (Payments: export columns)",
)

#: Every shop and payment export ``orders`` recognises.
ORDER_EXPORTS = (SHOPIFY_ORDERS, WOOCOMMERCE_ORDERS, STRIPE_PAYMENTS)
