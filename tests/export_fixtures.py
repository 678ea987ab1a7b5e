"""Vendor exports as their tools write them, written from each vendor's public description of its
export's columns (see ``documented_at`` of the shapes in analytics/ad_exports.py and
analytics/order_exports.py); no vendor file was copied.

Each fixture is an :class:`Export`: its header and rows as the tool writes them, the lines the tool
puts above the header and the summary rows below, and the totals a user would check the lake against
(the export's own sums, over its data rows).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Export:
    name: str
    dataset: str
    #: The ``source_format`` the lake should name.
    source_format: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    preamble: tuple[str, ...] = ()
    summary: tuple[tuple[str, ...], ...] = ()
    delimiter: str = ","
    #: What the curated table must sum to: column → value.
    sums: dict[str, float] = field(default_factory=dict)
    #: Rows the curated table must have.
    curated_rows: int = 0
    #: The channel the lake should give every row (None: from the export's own column).
    channel: str | None = None

    def csv(self, *, as_downloaded: bool = True) -> str:
        """The export's text: with its preamble and summary rows (as downloaded) or header and rows only."""
        out = io.StringIO()
        if as_downloaded:
            for line in self.preamble:
                out.write(line + "\r\n")
        writer = csv.writer(out, delimiter=self.delimiter, lineterminator="\r\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)
        if as_downloaded:
            writer.writerows(self.summary)
        return out.getvalue()


GOOGLE_ADS = Export(
    name="google_ads_campaign_report",
    dataset="ad_performance",
    source_format="google_ads",
    preamble=("Campaign performance", "January 1, 2026 - January 3, 2026"),
    header=(
        "Campaign",
        "Day",
        "Currency code",
        "Impr.",
        "Clicks",
        "CTR",
        "Avg. CPC",
        "Cost",
        "Conversions",
        "Conv. value",
    ),
    rows=(
        ("Brand - Search", "2026-01-01", "USD", "1,204", "96", "7.97%", "0.52", "49.92", "6.00", "612.40"),
        ("Brand - Search", "2026-01-02", "USD", "1,311", "102", "7.78%", "0.50", "51.00", "7.00", "701.15"),
        ("Brand - Search", "2026-01-03", "USD", "1,187", "88", "7.41%", "0.55", "48.40", "5.00", "498.00"),
        ("Generic - Shoes", "2026-01-01", "USD", "10,482", "312", "2.98%", "0.91", "283.92", "9.00", "1,061.10"),
        ("Generic - Shoes", "2026-01-02", "USD", "9,930", "297", "2.99%", "0.94", "279.18", "8.00", "944.00"),
        ("Generic - Shoes", "2026-01-03", "USD", "11,204", "340", "3.03%", "0.89", "302.60", "11.00", "1,298.55"),
    ),
    summary=(
        ("Total: Account", "--", "USD", "35,318", "1,235", "3.50%", "0.82", "1,015.02", "46.00", "5,115.20"),
        ("Total: Campaigns", "--", "USD", "35,318", "1,235", "3.50%", "0.82", "1,015.02", "46.00", "5,115.20"),
    ),
    sums={"impressions": 35_318, "clicks": 1_235, "spend": 1_015.02, "conversions": 46.0, "revenue": 5_115.20},
    curated_rows=6,
    channel="google_ads",
)

META_ADS = Export(
    name="meta_ads_manager_by_day",
    dataset="ad_performance",
    source_format="meta_ads",
    header=(
        "Reporting starts",
        "Reporting ends",
        "Campaign name",
        "Ad set name",
        "Day",
        "Impressions",
        "Reach",
        "Link clicks",
        "Amount spent (EUR)",
        "Results",
        "Result indicator",
        "Purchases",
        "Purchases conversion value",
    ),
    rows=(
        (
            "2026-01-01",
            "2026-01-02",
            "Winter sale",
            "Lookalike 1%",
            "2026-01-01",
            "8210",
            "6102",
            "143",
            "61.37",
            "4",
            "actions:offsite_conversion.fb_pixel_purchase",
            "4",
            "311.60",
        ),
        (
            "2026-01-01",
            "2026-01-02",
            "Winter sale",
            "Lookalike 1%",
            "2026-01-02",
            "7954",
            "5993",
            "131",
            "58.02",
            "3",
            "actions:offsite_conversion.fb_pixel_purchase",
            "3",
            "244.90",
        ),
        (
            "2026-01-01",
            "2026-01-02",
            "Winter sale",
            "Retargeting",
            "2026-01-01",
            "2301",
            "1410",
            "88",
            "22.15",
            "5",
            "actions:offsite_conversion.fb_pixel_purchase",
            "5",
            "402.00",
        ),
        (
            "2026-01-01",
            "2026-01-02",
            "Winter sale",
            "Retargeting",
            "2026-01-02",
            "2444",
            "1502",
            "91",
            "23.80",
            "",
            "",
            "",
            "",
        ),
    ),
    sums={"impressions": 20_909, "clicks": 453, "spend": 165.34},
    curated_rows=4,
    channel="meta",
)

TIKTOK_ADS = Export(
    name="tiktok_ads_manager_campaign_by_day",
    dataset="ad_performance",
    source_format="tiktok_ads",
    header=(
        "Campaign name",
        "By Day",
        "Currency",
        "Cost",
        "CPC (destination)",
        "Impressions",
        "Clicks (destination)",
        "CTR (destination)",
        "Conversions",
        "Cost per conversion",
        "Total complete payment",
    ),
    rows=(
        ("Spark - UGC", "2026-01-01", "USD", "120.50", "0.41", "40210", "294", "0.73%", "7", "17.21", "455.00"),
        ("Spark - UGC", "2026-01-02", "USD", "131.20", "0.43", "41877", "305", "0.73%", "9", "14.58", "612.30"),
        ("TopView launch", "2026-01-01", "USD", "800.00", "1.98", "250100", "404", "0.16%", "3", "266.67", "240.00"),
    ),
    sums={"impressions": 332_187, "clicks": 1_003, "spend": 1_051.70, "conversions": 19.0, "revenue": 1_307.30},
    curated_rows=3,
    channel="tiktok",
)

LINKEDIN_ADS = Export(
    name="linkedin_campaign_performance",
    dataset="ad_performance",
    source_format="linkedin_ads",
    preamble=(
        "Campaign Performance Report (in UTC)",
        "Report Start: 1/1/2026, 12:00 AM",
        "Report End: 1/2/2026, 11:59 PM",
        "Date Generated: 1/3/2026, 9:14 AM",
    ),
    header=(
        "Start Date (in UTC)",
        "Account Name",
        "Campaign Group Name",
        "Campaign Name",
        "Campaign ID",
        "Currency",
        "Total Spent",
        "Impressions",
        "Clicks",
        "Conversions",
        "Total Conversion Value",
    ),
    rows=(
        (
            "1/1/2026",
            "Acme GmbH",
            "Q1 pipeline",
            "CFO persona - sponsored content",
            "184220031",
            "EUR",
            "210.44",
            "15210",
            "61",
            "2",
            "0.00",
        ),
        (
            "1/2/2026",
            "Acme GmbH",
            "Q1 pipeline",
            "CFO persona - sponsored content",
            "184220031",
            "EUR",
            "198.10",
            "14802",
            "57",
            "1",
            "0.00",
        ),
        (
            "1/1/2026",
            "Acme GmbH",
            "Q1 pipeline",
            "Retargeting - doc ads",
            "184220044",
            "EUR",
            "75.00",
            "4021",
            "33",
            "3",
            "1500.00",
        ),
    ),
    sums={"impressions": 34_033, "clicks": 151, "spend": 483.54, "conversions": 6.0, "revenue": 1_500.0},
    curated_rows=3,
    channel="linkedin",
)

MICROSOFT_ADS = Export(
    name="microsoft_ads_campaign_report",
    dataset="ad_performance",
    source_format="microsoft_ads",
    preamble=(
        '"Report Name: Campaign performance"',
        '"Report Time: 1/1/2026 - 1/2/2026"',
        '"Time Zone: (GMT-08:00) Pacific Time (US & Canada)"',
        '"Last Completed Available Day: 1/3/2026 4:00:00 AM (GMT)"',
        "",
    ),
    header=(
        "Gregorian date",
        "Account name",
        "Campaign name",
        "Currency code",
        "Impressions",
        "Clicks",
        "Spend",
        "Conversions",
        "Revenue",
    ),
    rows=(
        ("1/1/2026", "Acme", "Brand", "USD", "3120", "211", "88.10", "12", "960.00"),
        ("1/2/2026", "Acme", "Brand", "USD", "2980", "190", "80.75", "10", "812.50"),
    ),
    summary=(
        ("Total", "", "", "", "6100", "401", "168.85", "22", "1772.50"),
        ("©2026 Microsoft Corporation. All rights reserved.",),
    ),
    sums={"impressions": 6_100, "clicks": 401, "spend": 168.85, "conversions": 22.0, "revenue": 1_772.50},
    curated_rows=2,
    channel="microsoft_ads",
)

_SHOPIFY_HEADER = (
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at", "Accepts Marketing",
    "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount", "Shipping Method",
    "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem compare at price",
    "Lineitem sku", "Lineitem requires shipping", "Lineitem taxable", "Lineitem fulfillment status",
    "Billing Name", "Billing Street", "Billing City", "Billing Zip", "Billing Country", "Billing Phone",
    "Shipping Name", "Shipping Country", "Notes", "Payment Method", "Refunded Amount", "Vendor", "Id", "Tags",
    "Risk Level", "Source", "Phone",
)  # fmt: skip


def _shopify_first(name: str, email: str, total: str, created: str, qty: str, item: str, price: str, sku: str,
                   billing: str, country: str, order_id: str) -> tuple[str, ...]:  # fmt: skip
    return (
        name, email, "paid", created, "fulfilled", created, "yes", "EUR", total, "4.90", "0.00", total, "", "0.00",
        "Standard", created, qty, item, price, "", sku, "true", "true", "fulfilled", billing, "12 Rue de Rivoli",
        "Paris", "75001", country, "+33 6 12 34 56 78", billing, country, "", "Shopify Payments", "0.00", "Acme",
        order_id, "", "Low", "web", "",
    )  # fmt: skip


def _shopify_line(name: str, email: str, created: str, qty: str, item: str, price: str, sku: str) -> tuple[str, ...]:
    # Later rows of an order carry the order's Name and Email, not its totals, dates or addresses.
    row = [""] * len(_SHOPIFY_HEADER)
    for column, value in (
        ("Name", name), ("Email", email), ("Lineitem quantity", qty), ("Lineitem name", item),
        ("Lineitem price", price), ("Lineitem sku", sku), ("Lineitem requires shipping", "true"),
        ("Lineitem taxable", "true"), ("Lineitem fulfillment status", "fulfilled"), ("Vendor", "Acme"),
    ):  # fmt: skip
        row[_SHOPIFY_HEADER.index(column)] = value
    del created
    return tuple(row)


SHOPIFY_ORDERS = Export(
    name="shopify_orders_export",
    dataset="orders",
    source_format="shopify_orders",
    header=_SHOPIFY_HEADER,
    rows=(
        _shopify_first(
            "#1001",
            "Camille.Durand@example.com",
            "73.80",
            "2026-01-05 09:50:26 +0100",
            "2",
            "Bio-collagen mask",
            "34.90",
            "MASK-01",
            "Camille Durand",
            "FR",
            "5820131401",
        ),
        _shopify_line("#1001", "Camille.Durand@example.com", "", "1", "Night cream", "4.00", "CREAM-02"),
        _shopify_first(
            "#1002",
            "lea.martin@example.org",
            "39.90",
            "2026-01-06 14:02:11 +0100",
            "1",
            "Bio-collagen mask",
            "34.90",
            "MASK-01",
            "Léa Martin",
            "FR",
            "5820131402",
        ),
        _shopify_first(
            "#1003",
            "camille.durand@example.com",
            "120.00",
            "2026-01-20 18:30:00 +0100",
            "3",
            "Serum",
            "25.00",
            "SER-03",
            "Camille Durand",
            "FR",
            "5820131403",
        ),
        _shopify_line("#1003", "camille.durand@example.com", "", "1", "Gift box", "40.10", "BOX-04"),
        _shopify_line("#1003", "camille.durand@example.com", "", "2", "Sample", "0.00", "SMP-05"),
    ),
    sums={"amount": 233.70, "quantity": 10},
    curated_rows=3,
)

WOOCOMMERCE_ORDERS = Export(
    name="woocommerce_analytics_orders",
    dataset="orders",
    source_format="woocommerce_orders",
    header=(
        "Date",
        "Order #",
        "N. Revenue (formatted)",
        "Status",
        "Customer",
        "Customer type",
        "Product(s)",
        "Items sold",
        "Coupon(s)",
        "Net Sales",
        "Attribution",
    ),
    rows=(
        (
            "2026-01-03 10:12:44",
            "2281",
            "$54.00",
            "Completed",
            "Jordan Smith",
            "new",
            "Mug, Tea",
            "2",
            "",
            "54.00",
            "Organic: Google",
        ),
        (
            "2026-01-04 16:40:02",
            "2282",
            "$18.50",
            "Processing",
            "Ana Souza",
            "returning",
            "Tea",
            "1",
            "WELCOME",
            "18.50",
            "Direct",
        ),
        (
            "2026-01-04 17:05:19",
            "2283",
            "$99.00",
            "Failed",
            "Ana Souza",
            "returning",
            "Kettle",
            "1",
            "",
            "99.00",
            "Direct",
        ),
        (
            "2026-01-05 08:00:00",
            "2284",
            "$31.25",
            "Completed",
            "Jordan Smith",
            "returning",
            "Tea",
            "3",
            "",
            "31.25",
            "Email",
        ),
    ),
    sums={"amount": 103.75, "quantity": 6},
    curated_rows=3,
    channel="woocommerce",
)

_STRIPE_HEADER = (
    "id", "Created date (UTC)", "Amount", "Amount Refunded", "Currency", "Captured", "Converted Amount",
    "Converted Amount Refunded", "Converted Currency", "Decline Reason", "Description", "Fee", "Status",
    "Seller Message", "Card ID", "Customer ID", "Customer Description", "Customer Email",
)  # fmt: skip


def _stripe_row(
    pid: str, created: str, amount: str, refunded: str, status: str, customer: str, email: str
) -> tuple[str, ...]:
    declined = status == "Failed"
    return (
        pid, created, amount, refunded, "usd", "false" if declined else "true", amount, refunded, "usd",
        "card_declined" if declined else "", "Pro plan", "0.00" if declined else "1.72", status,
        "The bank declined." if declined else "Payment complete.", f"card_{pid[-1]}", customer, "", email,
    )  # fmt: skip


STRIPE_PAYMENTS = Export(
    name="stripe_unified_payments",
    dataset="orders",
    source_format="stripe_payments",
    header=_STRIPE_HEADER,
    rows=(
        _stripe_row("ch_3QabcA1", "2026-01-02 11:04:55", "49.00", "0.00", "Paid", "cus_RxA1", "sam@example.com"),
        _stripe_row("ch_3QabcA2", "2026-01-03 09:15:02", "49.00", "0.00", "Failed", "cus_RxB2", "kim@example.com"),
        # a guest's payment, partly refunded: 15.00 kept
        _stripe_row("ch_3QabcA3", "2026-01-04 20:40:10", "19.00", "4.00", "Paid", "", "guest@example.net"),
        _stripe_row("ch_3QabcA4", "2026-02-02 11:04:55", "49.00", "0.00", "Paid", "cus_RxA1", "sam@example.com"),
        # refunded in full: not a sale
        _stripe_row("ch_3QabcA5", "2026-02-03 08:00:00", "99.00", "99.00", "Refunded", "cus_RxC3", "lee@example.com"),
    ),
    # what was charged and kept: failed payments and full refunds left out, partial refunds netted
    sums={"amount": 113.0},
    curated_rows=3,
    channel="stripe",
)

AD_EXPORTS = (GOOGLE_ADS, META_ADS, TIKTOK_ADS, LINKEDIN_ADS, MICROSOFT_ADS)
ORDER_EXPORTS = (SHOPIFY_ORDERS, WOOCOMMERCE_ORDERS, STRIPE_PAYMENTS)
ALL = AD_EXPORTS + ORDER_EXPORTS
