"""Shops' and payment providers' own exports, recognised as downloaded and mapped onto ``orders``.

Written from the vendors' public descriptions of their export columns (``documented_at``):

- Shopify's orders export has one row per line item; the order's own fields (total, dates,
  addresses, financial status) are on its first row, and ``Name`` (``#1001``) on every row. It is
  folded into one row per order with the order's own ``Total`` and the sum of its line items'
  quantities; the line items themselves go to ``order_items``. The customer is the ``Email``
  (pseudonymised with the lake's other personal data), as the export has no customer id.
- WooCommerce's Analytics → Orders download: one row per order; failed, cancelled and pending
  orders are not sales and are left out (counted in the event's facts).
- Stripe's payments export: one row per payment; the customer is ``Customer ID``, or the
  ``Customer Email`` of a guest payment; failed payments are left out (counted).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analytics.exports import KnownExport, Reshape, Reshaped, first_header

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


def fold_shopify(table: pa.Table, mapping: Mapping[str, str]) -> Reshaped:
    """Line items folded into one row per order (its own total, quantities summed); the lines go to order_items.

    An order's first row holds its own fields; its ``Name`` is on every row.
    """
    names = _text(table, mapping.get("order_id"))
    filled = pd.Series(names.to_pandas()).ffill()
    # An order's rows are contiguous; its first row holds the order's own fields.
    first = ~filled.duplicated(keep="first").to_numpy() | filled.isna().to_numpy()
    first_rows = np.flatnonzero(first)
    order_of_row = np.cumsum(first) - 1
    quantity_header = _header(table, r"lineitem_quantity")
    quantities = pd.to_numeric(
        pd.Series(_text(table, quantity_header).to_pandas()).str.replace(",", "", regex=False), errors="coerce"
    )
    per_order = quantities.groupby(order_of_row).sum(min_count=1).reindex(range(len(first_rows)))
    orders = table.take(pa.array(first_rows))
    if quantity_header is not None:
        text = [None if pd.isna(q) else str(int(q)) for q in per_order.to_numpy()]
        i = orders.column_names.index(quantity_header)
        orders = orders.set_column(i, quantity_header, pa.array(text, pa.string()))
    # The line items carry their order's customer and date (only on the first row in the export).
    customer = np.asarray(_text(table, mapping.get("customer_id")).to_numpy(zero_copy_only=False), dtype=object)
    created = np.asarray(_text(table, mapping.get("order_date")).to_numpy(zero_copy_only=False), dtype=object)
    line_number = np.arange(table.num_rows) - first_rows[order_of_row] + 1
    items = pa.table(
        {
            "order_id": pa.array(filled.to_numpy(dtype=object), pa.string()),
            "line_number": pa.array(line_number.astype(str), pa.string()),
            "customer_id": pa.array(customer[first_rows][order_of_row], pa.string()),
            "order_date": pa.array(created[first_rows][order_of_row], pa.string()),
            "product": _text(table, _header(table, r"lineitem_name")),
            "sku": _text(table, _header(table, r"lineitem_sku")),
            "quantity": _text(table, quantity_header),
            "price": _text(table, _header(table, r"lineitem_price")),
        }
    )
    return Reshaped(
        orders, extra={"order_items": items}, facts={"line_items": table.num_rows, "orders": len(first_rows)}
    )


def _drop_status(status_pattern: str, not_sales: frozenset[str]) -> Reshape:
    def reshape(table: pa.Table, mapping: Mapping[str, str]) -> Reshaped:
        header = _header(table, status_pattern)
        if header is None:
            return Reshaped(table)
        status = pc.utf8_lower(pc.fill_null(_text(table, header), ""))
        drop = pc.is_in(status, value_set=pa.array(sorted(not_sales)))
        dropped = int(pc.sum(drop).as_py() or 0)
        kept = table.filter(pc.invert(drop)) if dropped else table
        return Reshaped(kept, facts={"not_sales": dropped} if dropped else {})

    reshape.__doc__ = f"Rows whose status is {', '.join(sorted(not_sales))} left out (not sales; counted)."
    return reshape


def _stripe(table: pa.Table, mapping: Mapping[str, str]) -> Reshaped:
    """Failed, canceled and incomplete payments left out (counted); a guest payment's customer is its e-mail."""
    kept = _drop_status(r"status", frozenset({"failed", "canceled", "cancelled", "incomplete"}))(table, mapping)
    out = kept.table
    customer = mapping.get("customer_id")
    email = _header(out, r"customer_email")
    if customer is not None and email is not None and customer != email:
        merged = pc.coalesce(_text(out, customer), _text(out, email))
        out = out.set_column(out.column_names.index(customer), customer, merged)
    return Reshaped(out, facts=kept.facts)


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
    reshape=_drop_status(r"status", frozenset({"failed", "cancelled", "pending", "pending payment", "draft"})),
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
