"""Realistic, seeded sample data for the built-in datasets: the demo, the tests and the benchmarks.

Everything is vectorised (numpy + Arrow string kernels), so a 1,000,000-row file takes seconds:

>>> from analytics import samples
>>> text = samples.ad_performance_csv(1_000, seed=7)            # CSV text, Meta-style header
>>> path = samples.write_orders_csv("orders.csv", 1_000_000, customers=100_000)

Files look like real exports: platform header names (``Amount Spent (USD)``, ``Impr.``), currency
strings (``$1,234.50`` or ``1.234,50 €``), US/EU/ISO dates, messy channel case, customer ids with
leading zeros, and a small share of bad rows and duplicates (``bad_share``) that the contracts reject.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

HeaderStyle = Literal["meta", "google", "canonical"]
DateStyle = Literal["us", "eu", "iso"]
MoneyStyle = Literal["usd", "eur", "plain"]

_HEADERS: dict[str, dict[str, str]] = {
    "meta": {
        "date": "Day",
        "channel": "Platform",
        "campaign": "Campaign name",
        "ad_group": "Ad set name",
        "impressions": "Impressions",
        "clicks": "Link Clicks",
        "spend": "Amount Spent (USD)",
        "conversions": "Results",
        "revenue": "Purchases conversion value",
        "country": "Country",
    },
    "google": {
        "date": "Day",
        "channel": "Channel",
        "campaign": "Campaign",
        "ad_group": "Ad group",
        "impressions": "Impr.",
        "clicks": "Clicks",
        "spend": "Cost",
        "conversions": "Conversions",
        "revenue": "Conv. value",
        "country": "Country/Territory",
    },
    "canonical": {
        c: c
        for c in (
            "date",
            "channel",
            "campaign",
            "ad_group",
            "impressions",
            "clicks",
            "spend",
            "conversions",
            "revenue",
            "country",
        )
    },
}

_CHANNELS = np.array(["Google Ads", "Meta", "TikTok", "LinkedIn", "Microsoft Ads"], dtype=object)
# Exports disagree on case and whitespace; the pipeline must fold these into one channel.
_CHANNEL_NOISE = np.array(["{}", " {} ", "{}", "{}"], dtype=object)
_THEMES = np.array(["brand", "prospecting", "retargeting", "summer_sale", "black_friday", "app_install"])
_COUNTRIES = np.array(["US", "GB", "DE", "FR", "NL", "ES", "IT", "SE"], dtype=object)
_START = np.datetime64("2024-01-01")


def _str(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def format_money(values: np.ndarray, style: MoneyStyle) -> pa.Array:
    """Amounts as export strings: ``$1,234.50`` (usd), ``1.234,50 €`` (eur) or ``1234.50`` (plain)."""
    values = np.asarray(values, dtype=float)
    cents = np.round(np.abs(values) * 100).astype(np.int64)
    whole, frac = cents // 100, cents % 100
    frac_s = pc.utf8_lpad(_str(frac), width=2, padding="0")
    if style == "plain":
        body = _join(_str(whole), ".", frac_s)
        return pc.if_else(pa.array(values < 0), _join("-", body), body)
    group, decimal = (",", ".") if style == "usd" else (".", ",")
    millions, thousands, units = whole // 1_000_000, (whole // 1000) % 1000, whole % 1000
    pad3 = lambda a: pc.utf8_lpad(_str(a), width=3, padding="0")  # noqa: E731
    s_units = pc.if_else(pa.array(whole >= 1000), pad3(units), _str(units))
    s_thousands = pc.if_else(pa.array(whole >= 1_000_000), pad3(thousands), _str(thousands))
    body = pc.if_else(
        pa.array(whole >= 1_000_000),
        _join(_str(millions), group, s_thousands, group, s_units),
        pc.if_else(pa.array(whole >= 1000), _join(s_thousands, group, s_units), s_units),
    )
    body = _join(body, decimal, frac_s)
    neg = pa.array(values < 0)
    if style == "usd":
        return pc.if_else(neg, _join("-$", body), _join("$", body))
    return pc.if_else(neg, _join("-", body, " €"), _join(body, " €"))


def format_dates(days: np.ndarray, style: DateStyle) -> pa.Array:
    """``datetime64[D]`` values as ``01/31/2024`` (us), ``31.01.2024`` (eu) or ``2024-01-31`` (iso)."""
    ts = pa.array(days.astype("datetime64[s]"))
    fmt = {"us": "%m/%d/%Y", "eu": "%d.%m.%Y", "iso": "%Y-%m-%d"}[style]
    return pc.strftime(ts, format=fmt)


@dataclass(frozen=True)
class AdSample:
    """A generated ad export and what was planted in it."""

    table: pa.Table
    #: Row positions (0-based) made bad on purpose, and the reason code each should get.
    bad_rows: dict[int, str]
    #: Row positions overwritten with an exact copy of an earlier row.
    duplicate_rows: np.ndarray


def ad_performance_sample(
    rows: int,
    seed: int = 0,
    *,
    days: int = 90,
    header: HeaderStyle = "meta",
    dates: DateStyle = "us",
    money: MoneyStyle = "usd",
    bad_share: float = 0.01,
    duplicate_share: float = 0.005,
) -> AdSample:
    """A daily ad-platform export of ``rows`` rows as an all-string Arrow table (what CSV gives)."""
    rng = np.random.default_rng(seed)
    days = max(1, min(days, rows))
    groups = -(-rows // days)
    campaigns = max(1, groups // 8)
    group_campaign = rng.integers(0, campaigns, groups)
    group_campaign[: min(groups, campaigns)] = np.arange(min(groups, campaigns))
    campaign_channel = rng.integers(0, len(_CHANNELS), campaigns)
    campaign_theme = rng.integers(0, len(_THEMES), campaigns)
    base_impr = rng.lognormal(7.0, 1.0, groups)
    base_ctr = rng.beta(2, 60, groups)
    base_cvr = rng.beta(2, 40, groups)
    base_cpc = rng.lognormal(-0.5, 0.5, groups)
    aov = rng.lognormal(4.0, 0.4, groups)
    group_country = rng.integers(0, len(_COUNTRIES), groups)

    g = np.tile(np.arange(groups), days)[:rows]
    d = np.repeat(np.arange(days), groups)[:rows]
    weekday = 1.0 + 0.15 * np.sin(2 * np.pi * d / 7)
    impressions = rng.poisson(base_impr[g] * weekday)
    clicks = rng.binomial(impressions, base_ctr[g])
    conversions = rng.binomial(clicks, base_cvr[g])
    spend = np.round(clicks * base_cpc[g] * rng.lognormal(0, 0.1, rows), 2)
    revenue = np.round(conversions * aov[g] * rng.lognormal(0, 0.2, rows), 2)

    c = group_campaign[g]
    names = _HEADERS[header]
    channel = pc.replace_substring(
        pa.array(_CHANNEL_NOISE[rng.integers(0, len(_CHANNEL_NOISE), rows)], pa.string()),
        "{}",
        "",
    )
    channel = _join(
        pc.utf8_slice_codeunits(channel, 0, 1),
        pa.array(_CHANNELS[campaign_channel[c]], pa.string()),
        pc.utf8_slice_codeunits(channel, 1),
    )
    upper = rng.random(rows) < 0.1
    channel = pc.if_else(pa.array(upper), pc.utf8_upper(channel), channel)
    campaign_name = _join(
        pa.array(_THEMES[campaign_theme[c]].astype(object), pa.string()),
        "_",
        pc.utf8_lpad(_str(c), width=4, padding="0"),
    )
    columns: dict[str, pa.Array] = {
        "date": format_dates(_START + d.astype("timedelta64[D]"), dates),
        "channel": channel,
        "campaign": campaign_name,
        "ad_group": _join(campaign_name, "_ag", _str(g)),
        "impressions": _str(impressions),
        "clicks": _str(clicks),
        "spend": format_money(spend, money),
        "conversions": _str(conversions),
        "revenue": format_money(revenue, money),
        "country": pa.array(_COUNTRIES[group_country[g]], pa.string()),
    }
    bad: dict[int, str] = {}
    n_bad = int(rows * bad_share)
    if n_bad:
        positions = rng.choice(rows, n_bad, replace=False)
        kinds = np.array(
            [
                "negative_value",
                "clicks_exceed_impressions",
                "missing_date",
                "invalid_date",
                "conversions_exceed_clicks",
                "invalid_number",
            ]
        )
        chosen = kinds[np.arange(n_bad) % len(kinds)]
        patch = {name: columns[name].to_numpy(zero_copy_only=False).copy() for name in columns}
        for pos, kind in zip(positions.tolist(), chosen.tolist(), strict=True):
            if kind == "negative_value":
                patch["spend"][pos] = "-$12.00" if money == "usd" else "-12,00 €" if money == "eur" else "-12.00"
            elif kind == "clicks_exceed_impressions":
                patch["impressions"][pos] = "5"
                patch["clicks"][pos] = "50"
                patch["conversions"][pos] = "0"
            elif kind == "missing_date":
                patch["date"][pos] = ""
            elif kind == "invalid_date":
                patch["date"][pos] = "2024-13-45"
            elif kind == "conversions_exceed_clicks":
                patch["clicks"][pos] = "1"
                patch["impressions"][pos] = "100"
                patch["conversions"][pos] = "9"
            else:
                patch["spend"][pos] = "twelve dollars"
            bad[pos] = str(kind)
        columns = {name: pa.array(values, pa.string()) for name, values in patch.items()}
    n_dup = int(rows * duplicate_share)
    duplicates = np.zeros(0, dtype=np.int64)
    if n_dup and rows > 1:
        bad_positions = np.array(sorted(bad), dtype=np.int64)
        candidates = np.setdiff1d(np.arange(1, rows), bad_positions)
        duplicates = np.sort(rng.choice(candidates, min(n_dup, len(candidates)), replace=False))
        sources = duplicates - 1
        # Copy from the previous row unless that one is bad (keep the planted reasons exact).
        ok = ~np.isin(sources, bad_positions) & ~np.isin(sources, duplicates)
        duplicates, sources = duplicates[ok], sources[ok]
        index = np.arange(rows)
        index[duplicates] = sources
        columns = {name: arr.take(pa.array(index)) for name, arr in columns.items()}
    table = pa.table({names[k]: v for k, v in columns.items()})
    return AdSample(table, bad, duplicates)


def ad_performance_csv(rows: int, seed: int = 0, **options: object) -> str:
    """CSV text of :func:`ad_performance_sample` (same options)."""
    return to_csv(ad_performance_sample(rows, seed, **options).table)  # type: ignore[arg-type]


def write_ad_performance_csv(path: str | Path, rows: int, seed: int = 0, **options: object) -> Path:
    """Write an ad export CSV of ``rows`` rows to ``path``; 1,000,000 rows take a few seconds."""
    return write_csv(ad_performance_sample(rows, seed, **options).table, path)  # type: ignore[arg-type]


def to_csv(table: pa.Table) -> str:
    """CSV text with a header line, values quoted only where needed."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(quoting_style="needed"))
    return bytes(sink.getvalue()).decode("utf-8")


def write_csv(table: pa.Table, path: str | Path) -> Path:
    """Write ``table`` as CSV to ``path`` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, str(path), pacsv.WriteOptions(quoting_style="needed"))
    return path


# --- orders --------------------------------------------------------------------------------------

#: Customer archetypes planted in the orders sample: (share, orders per year, days since last order
#: at the end of the file, average order amount).
_ARCHETYPES = {
    "Champions": (0.15, 12.0, 10, 140.0),
    "Loyal": (0.20, 6.0, 35, 80.0),
    "At risk": (0.15, 5.0, 200, 90.0),
    "New": (0.15, 1.2, 15, 60.0),
    "Hibernating": (0.35, 1.0, 400, 40.0),
}


@dataclass(frozen=True)
class OrdersSample:
    """A generated orders export and what was planted in it."""

    table: pa.Table
    #: Archetype name of every customer id (the planted segments).
    customer_archetype: dict[str, str]
    bad_rows: dict[int, str]


def orders_sample(
    orders: int,
    customers: int | None = None,
    seed: int = 0,
    *,
    days: int = 730,
    bad_share: float = 0.005,
    money: MoneyStyle = "plain",
    with_archetypes: bool = True,
) -> OrdersSample:
    """An orders export with ``orders`` rows over about ``customers`` customers (ids like ``0004711``)."""
    rng = np.random.default_rng(seed)
    customers = customers or max(1, orders // 10)
    names = np.array(list(_ARCHETYPES), dtype=object)
    shares = np.array([v[0] for v in _ARCHETYPES.values()])
    archetype = rng.choice(len(names), customers, p=shares / shares.sum())
    rate = np.array([v[1] for v in _ARCHETYPES.values()])[archetype]
    recency = np.array([v[2] for v in _ARCHETYPES.values()])[archetype]
    mean_amount = np.array([v[3] for v in _ARCHETYPES.values()])[archetype]
    # Days between a customer's last order and the file's last day, spread around the archetype's.
    recency = np.minimum(rng.gamma(4.0, recency / 4.0).astype(np.int64), days - 2)
    last_day = days - 1 - recency
    # New customers have a short history; the others started somewhere in the first half.
    start = np.where(
        names[archetype] == "New",
        last_day - rng.integers(0, 30, customers),
        rng.integers(0, days // 2, customers),
    )
    start = np.clip(np.minimum(start, last_day), 0, days - 1)
    weight = rate * np.maximum(last_day - start, 1) / 365.0 + 1.0
    counts = np.maximum(1, rng.poisson(weight * orders / weight.sum()))
    # Trim or pad to exactly ``orders`` rows, keeping every customer's first and last order.
    excess = int(counts.sum()) - orders
    if excess > 0:
        reducible = np.flatnonzero(counts > 2)
        take = rng.choice(
            np.repeat(reducible, counts[reducible] - 2),
            min(excess, int((counts[reducible] - 2).sum())),
            replace=False,
        )
        np.subtract.at(counts, take, 1)
    elif excess < 0:
        np.add.at(counts, rng.integers(0, customers, -excess), 1)
    cust = np.repeat(np.arange(customers), counts)[:orders]
    if len(cust) < orders:
        cust = np.concatenate([cust, rng.integers(0, customers, orders - len(cust))])
    first_of_customer = np.r_[True, cust[1:] != cust[:-1]]
    last_of_customer = np.r_[cust[1:] != cust[:-1], True]
    span = last_day[cust] - start[cust]
    day = start[cust] + np.floor(rng.random(orders) * (span + 1)).astype(np.int64)
    day = np.where(first_of_customer, start[cust], day)
    day = np.where(last_of_customer, last_day[cust], day)
    amount = np.round(rng.gamma(4.0, mean_amount[cust] / 4.0), 2) + 1.0
    seconds = rng.integers(0, 86_400, orders)
    ts = (_START + day.astype("timedelta64[D]")).astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    order_ts = pc.strftime(pa.array(ts), format="%Y-%m-%d %H:%M:%S")
    customer_id = pc.utf8_lpad(_str(cust + 1), width=7, padding="0")
    shuffle = rng.permutation(orders)
    columns: dict[str, pa.Array] = {
        "order_id": _join("SO-", pc.utf8_lpad(_str(np.arange(1, orders + 1)), width=8, padding="0")),
        "customer_id": customer_id.take(pa.array(shuffle)),
        "order_date": order_ts.take(pa.array(shuffle)),
        "amount": format_money(amount[shuffle], money),
        "quantity": _str(rng.integers(1, 5, orders)),
        "channel": pa.array(np.array(["web", "app", "store"], dtype=object)[rng.integers(0, 3, orders)], pa.string()),
        "country": pa.array(_COUNTRIES[rng.integers(0, len(_COUNTRIES), orders)], pa.string()),
    }
    bad: dict[int, str] = {}
    n_bad = int(orders * bad_share)
    if n_bad:
        patch = {k: v.to_numpy(zero_copy_only=False).copy() for k, v in columns.items()}
        positions = rng.choice(orders, n_bad, replace=False)
        kinds = ["missing_customer_id", "invalid_date", "negative_amount", "invalid_number"]
        for i, pos in enumerate(positions.tolist()):
            kind = kinds[i % len(kinds)]
            if kind == "missing_customer_id":
                patch["customer_id"][pos] = ""
            elif kind == "invalid_date":
                patch["order_date"][pos] = "not a date"
            elif kind == "negative_amount":
                patch["amount"][pos] = "-25.00"
            else:
                patch["amount"][pos] = "12,34,5x"
            bad[pos] = kind
        columns = {k: pa.array(v, pa.string()) for k, v in patch.items()}
    ids = [f"{i + 1:07d}" for i in range(customers)] if with_archetypes else []
    mapping = dict(zip(ids, names[archetype].tolist(), strict=False)) if with_archetypes else {}
    return OrdersSample(pa.table(columns), mapping, bad)


def orders_csv(orders: int, customers: int | None = None, seed: int = 0, **options: object) -> str:
    """CSV text of :func:`orders_sample` (same options)."""
    return to_csv(orders_sample(orders, customers, seed, with_archetypes=False, **options).table)  # type: ignore[arg-type]


def write_orders_csv(
    path: str | Path, orders: int, customers: int | None = None, seed: int = 0, **options: object
) -> Path:
    """Write an orders CSV; 1,000,000 orders over 100,000 customers take a few seconds."""
    sample = orders_sample(orders, customers, seed, with_archetypes=False, **options)  # type: ignore[arg-type]
    return write_csv(sample.table, path)


#: Chance that a customer of each planted archetype orders in the month after the export: most
#: champions come back, a few hibernating customers are won back, the rest lapse.
_NEXT_MONTH_RETURN = {"Champions": 0.85, "Loyal": 0.6, "At risk": 0.2, "New": 0.45, "Hibernating": 0.05}


def next_month_orders(
    previous: OrdersSample, start: str, seed: int = 0, *, days: int = 31, new_share: float = 0.1
) -> pa.Table:
    """The orders of the month after ``previous`` (same columns, plain amounts, no bad rows).

    Each of ``previous``'s customers orders again with the chance its archetype gives
    (:data:`_NEXT_MONTH_RETURN`), ``new_share`` of their number arrive as new customers (ids after
    the last), everyone else lapses. Order ids continue after ``previous``'s; dates fall in the
    ``days`` days from ``start`` (``YYYY-MM-DD``); rows are in order-date order, as exports are.
    """
    if not previous.customer_archetype:
        raise ValueError("next_month_orders needs the archetypes of the previous sample (with_archetypes=True)")
    rng = np.random.default_rng(seed)
    ids = np.array(sorted(previous.customer_archetype), dtype=object)
    kinds = [previous.customer_archetype[i] for i in ids]
    chance = np.array([_NEXT_MONTH_RETURN[k] for k in kinds])
    rate = np.array([_ARCHETYPES[k][1] for k in kinds])
    mean_amount = np.array([_ARCHETYPES[k][3] for k in kinds])
    back = rng.random(len(ids)) < chance
    new = round(len(ids) * new_share)
    width = len(ids[0])
    new_ids = np.array([f"{int(ids[-1]) + 1 + i:0{width}d}" for i in range(new)], dtype=object)
    buyer_ids = np.concatenate([ids[back], new_ids])
    # Returning customers order about as often as their archetype does; a new one once or twice.
    counts = 1 + rng.poisson(np.concatenate([rate[back] * days / 365.0, np.full(new, 0.3)]))
    means = np.concatenate([mean_amount[back], np.full(new, _ARCHETYPES["New"][3])])
    n = int(counts.sum())
    who = np.repeat(np.arange(len(buyer_ids)), counts)
    day = np.datetime64(start, "D") + rng.integers(0, days, n).astype("timedelta64[D]")
    ts = day.astype("datetime64[s]") + rng.integers(0, 86_400, n).astype("timedelta64[s]")
    order = np.argsort(ts, kind="stable")
    first_number = previous.table.num_rows + 1
    columns: dict[str, pa.Array] = {
        "order_id": _join("SO-", pc.utf8_lpad(_str(np.arange(first_number, first_number + n)), width=8, padding="0")),
        "customer_id": pa.array(buyer_ids[who][order], pa.string()),
        "order_date": pc.strftime(pa.array(ts[order]), format="%Y-%m-%d %H:%M:%S"),
        "amount": format_money((np.round(rng.gamma(4.0, means[who] / 4.0), 2) + 1.0)[order], "plain"),
        "quantity": _str(rng.integers(1, 5, n)),
        "channel": pa.array(np.array(["web", "app", "store"], dtype=object)[rng.integers(0, 3, n)], pa.string()),
        "country": pa.array(_COUNTRIES[rng.integers(0, len(_COUNTRIES), n)], pa.string()),
    }
    return pa.table(columns)


def planted_rfm(per_segment: int = 200, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Synthetic RFM features with five well-separated planted segments, and their labels.

    Returns ``({"recency_days", "orders", "total_amount"}, labels)``; used to check that the
    segmentation recovers planted clusters.
    """
    rng = np.random.default_rng(seed)
    centres = [  # recency days, orders, total amount
        (5.0, 40.0, 4000.0),
        (30.0, 12.0, 900.0),
        (300.0, 15.0, 1200.0),
        (10.0, 1.0, 60.0),
        (500.0, 1.0, 40.0),
    ]
    recency, orders, amount, labels = [], [], [], []
    for label, (r, f, m) in enumerate(centres):
        recency.append(np.exp(rng.normal(np.log(r), 0.15, per_segment)))
        orders.append(np.maximum(1, np.round(np.exp(rng.normal(np.log(f), 0.1, per_segment)))))
        amount.append(np.exp(rng.normal(np.log(m), 0.15, per_segment)))
        labels.append(np.full(per_segment, label))
    return (
        {
            "recency_days": np.round(np.concatenate(recency)),
            "orders": np.concatenate(orders),
            "total_amount": np.concatenate(amount),
        },
        np.concatenate(labels),
    )


# --- experiments ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentSample:
    """A generated experiment log and what was planted in it."""

    table: pa.Table
    #: user ids exposed to two variants of the same experiment (must be quarantined).
    crossed_users: list[tuple[str, str]]


def experiments_sample(
    users: int = 10_000,
    seed: int = 0,
    *,
    experiments: tuple[tuple[str, dict[str, float]], ...] = (
        ("checkout_button", {"control": 0.10, "treatment": 0.12}),
        ("pricing_page", {"A": 0.05, "B": 0.05, "C": 0.065}),
    ),
    crossed_share: float = 0.002,
    revenue: bool = True,
) -> ExperimentSample:
    """An exposure/outcome log: one row per user and experiment, ``converted`` as yes/no/1/0/true."""
    rng = np.random.default_rng(seed)
    parts: list[pa.Table] = []
    crossed: list[tuple[str, str]] = []
    for exp_id, rates in experiments:
        variants = np.array(list(rates), dtype=object)
        v = rng.integers(0, len(variants), users)
        p = np.array(list(rates.values()))[v]
        conv = rng.random(users) < p
        flag_styles = np.array([["0", "1"], ["no", "yes"], ["false", "true"]], dtype=object)
        style = rng.integers(0, 3, users)
        converted = flag_styles[style, conv.astype(int)]
        user_ids = np.char.add("u", np.char.zfill(np.arange(users).astype(str), 6)).astype(object)
        cols: dict[str, pa.Array] = {
            "experiment_id": pa.array(np.full(users, exp_id, dtype=object), pa.string()),
            "variant": pa.array(variants[v], pa.string()),
            "user_id": pa.array(user_ids, pa.string()),
            "converted": pa.array(converted, pa.string()),
        }
        if revenue:
            rev = np.where(conv, np.round(rng.gamma(3.0, 15.0, users), 2), 0.0)
            cols["revenue"] = format_money(rev, "plain")
        table = pa.table(cols)
        n_cross = int(users * crossed_share)
        if n_cross:
            who = rng.choice(users, n_cross, replace=False)
            extra = table.take(pa.array(who))
            other = pa.array(variants[(v[who] + 1) % len(variants)], pa.string())
            extra = extra.set_column(1, "variant", other)
            table = pa.concat_tables([table, extra])
            crossed.extend((exp_id, str(user_ids[i])) for i in who)
        parts.append(table)
    return ExperimentSample(pa.concat_tables(parts), crossed)


def experiments_csv(users: int = 10_000, seed: int = 0, **options: object) -> str:
    """CSV text of :func:`experiments_sample` (same options)."""
    return to_csv(experiments_sample(users, seed, **options).table)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """Write a sample CSV: ``python -m analytics.samples DATASET PATH [--rows N] [--seed N]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m analytics.samples", description=main.__doc__)
    parser.add_argument("dataset", choices=["ad_performance", "orders", "experiments"])
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=10_000, help="rows (ads, orders) or users per experiment")
    parser.add_argument("--customers", type=int, default=None, help="orders only; default rows / 10")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.dataset == "ad_performance":
        write_ad_performance_csv(args.path, args.rows, args.seed)
    elif args.dataset == "orders":
        write_orders_csv(args.path, args.rows, args.customers, args.seed)
    else:
        write_csv(experiments_sample(args.rows, args.seed).table, args.path)
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
