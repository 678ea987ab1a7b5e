"""The ``orders`` report: segments and their change, moves between segments, R/F/M scores, lifetime value."""

from __future__ import annotations

import datetime as dt
from typing import Any

from reports import charts, page
from reports.base import Context, Section, as_of_dates, choose_as_of, previous, rows, sql_date

SEGMENTS = "customer_segments"
RFM = "customer_rfm"
VALUE = "customer_value"
NEW = "(new customer)"
GONE = "(no longer in the data)"
#: Bins of the P(alive) histogram.
P_ALIVE_BINS = 20


def _alive_by_construction(alias: str = "") -> str:
    """A customer with one order, some days ago, whom the model gave P(alive) = 1: BG/NBD does that to
    every such customer by construction (dropout only after a repeat purchase), so it says nothing."""
    p = f"{alias}." if alias else ""
    return f"{p}frequency = 0 AND {p}age_days > 0 AND {p}p_alive >= 1"


def sections(ctx: Context) -> tuple[list[Section], dt.date | None]:
    """The orders sections and the as_of they draw."""
    out: list[Section] = []
    if not ctx.sources.has(SEGMENTS):
        s = Section("Customer segments", "segments")
        s.note(
            f"no {SEGMENTS} table yet: segments are computed by the orders refresh, which runs after the first "
            "orders file is processed"
        )
        out.append(s)
        return out, None
    available = as_of_dates(ctx.query, SEGMENTS)
    as_of = choose_as_of(ctx.dataset, SEGMENTS, available, ctx.as_of)
    if as_of is None:
        s = Section("Customer segments", "segments")
        s.note(f"{SEGMENTS} has no rows yet: nothing to draw")
        out.append(s)
        return out, None
    before = previous(available, as_of)
    out.append(_segments(ctx, as_of, before))
    out.append(_moves(ctx, as_of, before))
    out.append(_scores(ctx, as_of))
    out.append(_value(ctx, as_of))
    return out, as_of


def _segments(ctx: Context, as_of: dt.date, before: dt.date | None) -> Section:
    s = Section(
        "Customer segments",
        "segments",
        "Customers in each segment on the newest as_of date (dark bars) and on the one before it (light bars). "
        "The table gives the change; a segment that grew has a positive change.",
    )
    wanted = [as_of] if before is None else [before, as_of]
    result = rows(
        ctx.query(
            "SELECT as_of, segment_id, segment_name, customers, share FROM customer_segments "
            f"WHERE as_of IN ({', '.join(sql_date(d) for d in wanted)}) ORDER BY segment_id, as_of"
        )
    )
    now = {r["segment_id"]: r for r in result if r["as_of"] == as_of}
    then = {r["segment_id"]: r for r in result if r["as_of"] == before}
    ids = sorted(set(now) | set(then))
    names = {i: (now.get(i) or then[i])["segment_name"] for i in ids}
    if before is None:
        s.note(
            f"one as_of so far ({as_of.isoformat()}): the change since the previous as_of needs a second refresh "
            "over newer orders"
        )
    counts_now = [int(now[i]["customers"]) if i in now else 0 for i in ids]
    counts_then = [int(then[i]["customers"]) if i in then else 0 for i in ids]

    def draw(figure: Any) -> None:
        ax = figure.subplots()
        y = list(range(len(ids)))
        height = 0.38 if before is not None else 0.6
        if before is not None:
            charts.mark(
                ax.barh([v + height / 2 for v in y], counts_then, height, color=charts.OKABE_ITO[4], label=str(before)),
                "segments-previous",
            )
        offset = -height / 2 if before is not None else 0.0
        charts.mark(
            ax.barh([v + offset for v in y], counts_now, height, color=charts.OKABE_ITO[0], label=str(as_of)),
            "segments",
        )
        ax.set_yticks(y, [charts.short(str(names[i])) for i in ids])
        ax.invert_yaxis()
        ax.set_xlabel("customers")
        charts.counts(ax, "x")
        # Outside the axes: inside, it would sit on the bars of some segment.
        ax.legend(title="as_of", loc="upper left", bbox_to_anchor=(1.0, 1.0))

    s.parts.append(
        page.figure(
            charts.svg(draw, slug="segments", height=0.5 + 0.42 * max(len(ids), 2), label="customers per segment"),
            f"Customers per segment on {as_of}" + (f" and {before}" if before else ""),
        )
    )
    body = []
    for i, n_now, n_then in zip(ids, counts_now, counts_then, strict=True):
        share = now[i]["share"] if i in now else None
        if before is None:
            body.append([names[i], page.number(n_now), page.number(share, 1, percent=True)])
            continue
        change = n_now - n_then
        css = "up" if change > 0 else "down" if change < 0 else ""
        pct = page.number(change / n_then, 1, percent=True, signed=True) if n_then else "new"
        body.append(
            [
                names[i],
                page.number(n_then),
                page.number(n_now),
                (css, page.number(change, signed=True)),
                (css, pct),
                page.number(share, 1, percent=True),
            ]
        )
    if before is None:
        s.parts.append(page.table(["segment", f"customers on {as_of}", "share"], body, numeric=(1, 2)))
    else:
        s.parts.append(
            page.table(
                ["segment", f"customers on {before}", f"customers on {as_of}", "change", "change %", "share now"],
                body,
                numeric=(1, 2, 3, 4, 5),
            )
        )
    return s


def _moves(ctx: Context, as_of: dt.date, before: dt.date | None) -> Section:
    s = Section(
        "Moves between segments",
        "moves",
        "Each cell counts the customers who were in the row's segment on the previous as_of and are in the "
        "column's segment now. The diagonal stayed put; everything off it moved.",
    )
    if before is None:
        s.note("moves between segments need two as_of dates; there is one so far")
        return s
    if not ctx.sources.has(RFM):
        s.note(f"no {RFM} table: per-customer segments are what moves are counted from")
        return s
    # Aggregated in SQL: the matrix is segments x segments, however many customers there are.
    result = rows(
        ctx.query(
            f"""
            WITH p AS (SELECT customer_id, segment_id, segment_name FROM customer_rfm WHERE as_of = {sql_date(before)}),
                 c AS (SELECT customer_id, segment_id, segment_name FROM customer_rfm WHERE as_of = {sql_date(as_of)})
            SELECT coalesce(p.segment_id, -1) AS from_id, coalesce(p.segment_name, '{NEW}') AS from_segment,
                   coalesce(c.segment_id, -1) AS to_id, coalesce(c.segment_name, '{GONE}') AS to_segment,
                   count(*) AS customers
            FROM p FULL OUTER JOIN c ON p.customer_id = c.customer_id
            GROUP BY 1, 2, 3, 4
            """
        )
    )
    if not result:
        s.note(f"{RFM} has no customers on {before} or {as_of}")
        return s

    def order(key_id: str, key_name: str) -> list[tuple[int, str]]:
        found = {(int(r[key_id]), str(r[key_name])) for r in result}
        # Real segments by id; "(new customer)" / "(no longer in the data)" last.
        return sorted(found, key=lambda t: (t[0] < 0, t[0]))

    sources = order("from_id", "from_segment")
    targets = order("to_id", "to_segment")
    matrix = [[0] * len(targets) for _ in sources]
    for r in result:
        matrix[sources.index((int(r["from_id"]), str(r["from_segment"])))][
            targets.index((int(r["to_id"]), str(r["to_segment"])))
        ] = int(r["customers"])
    peak = max(max(row) for row in matrix) or 1

    def draw(figure: Any) -> None:
        ax = figure.subplots()
        image = ax.imshow(matrix, cmap=charts.SEQUENTIAL, aspect="auto", vmin=0, vmax=peak)
        charts.mark(image, "moves")
        ax.grid(False)
        ax.set_xticks(range(len(targets)), [charts.short(n, 18) for _, n in targets], rotation=20, ha="right")
        ax.set_yticks(range(len(sources)), [charts.short(n, 22) for _, n in sources])
        ax.set_xlabel(f"segment on {as_of}")
        ax.set_ylabel(f"segment on {before}")
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:,}", ha="center", va="center", color="black" if v > peak * 0.55 else "white")
        figure.colorbar(image, ax=ax, label="customers", shrink=0.8)

    s.parts.append(
        page.figure(
            charts.svg(
                draw,
                slug="moves",
                height=1.2 + 0.42 * len(sources),
                width=8.5,
                label=f"customers moving between segments from {before} to {as_of}",
            ),
            f"Customers by segment on {before} (rows) and on {as_of} (columns)",
        )
    )
    header = [f"segment on {before}", *[n for _, n in targets], "customers"]
    body = [
        [n, *[page.number(v) for v in row], page.number(sum(row))] for (_, n), row in zip(sources, matrix, strict=True)
    ]
    s.parts.append(page.table(header, body, numeric=tuple(range(1, len(targets) + 2))))
    return s


#: Scores 1–5 of the R×F grid.
SCORES = range(1, 6)


def _scores(ctx: Context, as_of: dt.date) -> Section:
    s = Section(
        "Recency × frequency",
        "scores",
        "Customers in each cell of recency score (rows, 5 = ordered most recently) by frequency score (columns, "
        "5 = most orders), with their spend to date. Each score is a quintile, so every row and every column holds "
        "about a fifth of customers; where they meet is what differs. Top right: recent and frequent (your best); "
        "bottom right: frequent but lapsed (worth winning back); top left: recent first orders.",
    )
    if not ctx.sources.has(RFM):
        s.note(f"no {RFM} table: scores are per customer there")
        return s
    result = rows(
        ctx.query(
            f"""
            SELECT r_score, f_score, count(*) AS customers, sum(total_amount) AS spend
            FROM customer_rfm WHERE as_of = {sql_date(as_of)} AND r_score IS NOT NULL AND f_score IS NOT NULL
            GROUP BY 1, 2
            """
        )
    )
    if not result:
        s.note(f"{RFM} has no customers on {as_of}")
        return s
    cell = {(int(r["r_score"]), int(r["f_score"])): r for r in result}
    recency = list(reversed(SCORES))  # 5 on top
    customers = [[int(cell[(rs, fs)]["customers"]) if (rs, fs) in cell else 0 for fs in SCORES] for rs in recency]
    spend = [[float(cell[(rs, fs)]["spend"] or 0.0) if (rs, fs) in cell else 0.0 for fs in SCORES] for rs in recency]
    peak = max(max(row) for row in customers) or 1

    def draw(figure: Any) -> None:
        ax = figure.subplots()
        image = ax.imshow(customers, cmap=charts.SEQUENTIAL, aspect="auto", vmin=0, vmax=peak)
        charts.mark(image, "rf-grid")
        ax.grid(False)
        ax.set_xticks(range(5), [str(v) for v in SCORES])
        ax.set_yticks(range(5), [str(v) for v in recency])
        ax.set_xlabel("frequency score (5 = most orders)")
        ax.set_ylabel("recency score (5 = most recent)")
        for i, row in enumerate(customers):
            for j, n in enumerate(row):
                ax.text(
                    j,
                    i,
                    f"{n:,}\n{charts.compact(spend[i][j])}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if n > peak * 0.55 else "white",
                )
        figure.colorbar(image, ax=ax, label="customers", shrink=0.9)

    s.parts.append(
        page.figure(
            charts.svg(draw, slug="scores", height=3.6, width=6.5, label="customers by recency and frequency score"),
            f"Customers (and their spend to date, order currency) by recency and frequency score on {as_of}",
        )
    )
    header = ["recency score", *[f"F {v}" for v in SCORES], "customers"]
    body = [
        [
            f"R {rs}",
            *[f"{page.number(n)} · {page.number(v, 0)}" for n, v in zip(customers[i], spend[i], strict=True)],
            page.number(sum(customers[i])),
        ]
        for i, rs in enumerate(recency)
    ]
    s.parts.append(
        page.table(
            header,
            body,
            numeric=tuple(range(1, 7)),
            caption="Customers · spend to date per cell (rows: recency score; columns: frequency score)",
        )
    )
    return s


def _value(ctx: Context, as_of: dt.date) -> Section:
    s = Section(
        "Lifetime value by segment",
        "value",
        "Expected value of each segment's customers over the next 365 days (BG/NBD or MBG/NBD expected purchases × "
        "Gamma-Gamma expected spend, undiscounted), and how likely its customers are still active (P(alive)).",
    )
    if not ctx.sources.has(VALUE):
        s.note(
            f"no {VALUE} table: lifetime value is kept once the models fit (enough customers with a repeat "
            "purchase); the fitted models' table below says how this refresh's fit went"
        )
        _fitted_table(ctx, s)
        return s
    dates = [d for d in as_of_dates(ctx.query, VALUE) if d <= as_of]
    if not dates:
        s.note(f"{VALUE} has no snapshot on or before {as_of}: the models were not fitted yet")
        _fitted_table(ctx, s)
        return s
    value_as_of = dates[-1]
    if value_as_of != as_of:
        s.note(
            f"{VALUE} was last fitted as of {value_as_of} (the fit of {as_of} kept the previous snapshot): the "
            f"values below are as of {value_as_of}"
        )
    d = sql_date(value_as_of)
    # P(alive) means over the customers whose P(alive) the model estimated (see _alive_by_construction).
    estimated = f"CASE WHEN NOT ({_alive_by_construction('v')}) THEN v.p_alive END"
    by_segment = (
        rows(
            ctx.query(
                f"""
            SELECT r.segment_id, r.segment_name, count(*) AS customers,
                   avg(v.expected_value_365d) AS mean_value_365d, sum(v.expected_value_365d) AS total_value_365d,
                   avg({estimated}) AS mean_p_alive, avg(v.expected_purchases_365d) AS mean_purchases_365d,
                   sum(CASE WHEN {_alive_by_construction("v")} THEN 1 ELSE 0 END) AS alive_by_construction
            FROM customer_value v JOIN customer_rfm r ON r.customer_id = v.customer_id AND r.as_of = v.as_of
            WHERE v.as_of = {d}
            GROUP BY 1, 2 ORDER BY 1
            """
            )
        )
        if ctx.sources.has(RFM)
        else []
    )
    if not ctx.sources.has(RFM):
        s.note(f"no {RFM} table: value cannot be split by segment")
    histogram = rows(
        ctx.query(
            f"""
            SELECT least(CAST(floor(p_alive * {P_ALIVE_BINS}) AS bigint), {P_ALIVE_BINS - 1}) AS bin,
                   count(*) AS customers
            FROM customer_value
            WHERE as_of = {d} AND p_alive IS NOT NULL AND NOT ({_alive_by_construction()})
            GROUP BY 1 ORDER BY 1
            """
        )
    )
    summary = rows(
        ctx.query(
            f"""
            SELECT count(*) AS customers, sum(CASE WHEN frequency > 0 THEN 1 ELSE 0 END) AS repeat_customers,
                   avg(CASE WHEN NOT ({_alive_by_construction()}) THEN p_alive END) AS mean_p_alive,
                   sum(CASE WHEN {_alive_by_construction()} THEN 1 ELSE 0 END) AS alive_by_construction,
                   avg(expected_purchases_365d) AS mean_purchases_365d,
                   avg(expected_spend) AS mean_expected_spend, sum(expected_value_365d) AS total_value_365d
            FROM customer_value WHERE as_of = {d}
            """
        )
    )[0]
    certain = int(summary["alive_by_construction"] or 0)
    if certain:
        s.parts.append(
            page.paragraph(
                f"{page.number(certain)} of the {page.number(summary['customers'])} customers have a single order "
                f"and a P(alive) of 100%: not an estimate but how BG/NBD, the purchase model behind this snapshot, "
                "is built (a customer can only leave after a repeat purchase, so one who never came back counts "
                "as active for ever). They are left out of every mean P(alive) and of the histogram below."
                + _choice_in_words(ctx, value_as_of),
                "verdict",
            )
        )
    else:
        words = _choice_in_words(ctx, value_as_of).strip()
        if words:
            s.parts.append(page.paragraph(words))

    if by_segment:
        names = [str(r["segment_name"]) for r in by_segment]
        means = [float(r["mean_value_365d"] or 0.0) for r in by_segment]

        def draw(figure: Any) -> None:
            ax = figure.subplots()
            charts.mark(ax.barh(range(len(names)), means, 0.6, color=charts.OKABE_ITO[2]), "value")
            ax.set_yticks(range(len(names)), [charts.short(n) for n in names])
            ax.invert_yaxis()
            ax.set_xlabel("mean expected value per customer, next 365 days (order currency, undiscounted)")
            charts.thousands(ax, "x")

        s.parts.append(
            page.figure(
                charts.svg(draw, slug="value", height=0.6 + 0.4 * max(len(names), 2), label="value by segment"),
                f"Mean expected 365-day value per customer by segment, as of {value_as_of}",
            )
        )
        s.parts.append(
            page.table(
                [
                    "segment",
                    "customers",
                    "mean value 365 d",
                    "total value 365 d",
                    "mean P(alive)" + (" (estimated)" if certain else ""),
                    "mean purchases 365 d",
                    *(["one order, P(alive) 100% by construction"] if certain else []),
                ],
                [
                    [
                        r["segment_name"],
                        page.number(r["customers"]),
                        page.number(r["mean_value_365d"], 2),
                        page.number(r["total_value_365d"], 0),
                        page.number(r["mean_p_alive"], 1, percent=True),
                        page.number(r["mean_purchases_365d"], 2),
                        *([page.number(r["alive_by_construction"])] if certain else []),
                    ]
                    for r in by_segment
                ],
                numeric=(1, 2, 3, 4, 5, 6) if certain else (1, 2, 3, 4, 5),
            )
        )
    if histogram:
        counts = [0] * P_ALIVE_BINS
        for r in histogram:
            counts[int(r["bin"])] = int(r["customers"])

        def draw_hist(figure: Any) -> None:
            ax = figure.subplots()
            edges = [i / P_ALIVE_BINS for i in range(P_ALIVE_BINS)]
            charts.mark(
                ax.bar(edges, counts, 1 / P_ALIVE_BINS, align="edge", color=charts.OKABE_ITO[0], edgecolor="white"),
                "p-alive",
            )
            ax.set_xlim(0, 1)
            ax.set_xlabel("P(alive): probability the customer is still active")
            ax.set_ylabel("customers")
            charts.counts(ax)

        s.parts.append(
            page.figure(
                charts.svg(draw_hist, slug="p-alive", height=2.6, label="P(alive) histogram"),
                f"Customers by P(alive), as of {value_as_of}"
                + (f" (without the {certain:,} one-order customers at 100% by construction)" if certain else ""),
            )
        )
    if not _fitted_table(ctx, s):
        s.note(
            "the fitted parameters of BG/NBD (r, α, a, b) and Gamma-Gamma (p, q, γ) are kept in no table, only in the "
            "clv_bg_nbd and clv_gamma_gamma facts of the refresh's Dataset Models Updated event, and this report "
            f"was drawn without them; the table below is what {VALUE} holds"
        )
    s.parts.append(
        page.table(
            [
                "as_of",
                "customers",
                "with a repeat purchase",
                "mean P(alive)" + (" (estimated)" if certain else ""),
                "mean purchases 365 d",
                "mean expected spend",
                "total value 365 d",
            ],
            [
                [
                    str(value_as_of),
                    page.number(summary["customers"]),
                    page.number(summary["repeat_customers"]),
                    page.number(summary["mean_p_alive"], 1, percent=True),
                    page.number(summary["mean_purchases_365d"], 2),
                    page.number(summary["mean_expected_spend"], 2),
                    page.number(summary["total_value_365d"], 0),
                ]
            ],
            numeric=(1, 2, 3, 4, 5, 6),
        )
    )
    return s


def _choice_in_words(ctx: Context, value_as_of: dt.date) -> str:
    """ " <model> was chosen by ...", from the refresh's clv_purchase_model fact when it fitted this as_of."""
    for fact in ctx.facts:
        metrics = fact.get("metrics") or {}
        if fact.get("name") != "clv_purchase_model" or metrics.get("as_of") != value_as_of.isoformat():
            continue
        model, chosen_by = metrics.get("model"), str(metrics.get("chosen_by") or "")
        if not model:
            return ""
        if chosen_by == "held-out log-likelihood":
            scores = {m: metrics.get(f"holdout_log_likelihood_{m.lower().replace('/', '_')}") for m in _MODELS}
            other = next(m for m in _MODELS if m != model)
            return (
                f" {model} was chosen over {other} by the log-likelihood of the order days of the last "
                f"{page.number(metrics.get('holdout_days'))} days, held out from a fit on the days before "
                f"({page.number(scores[model], 1)} against {page.number(scores[other], 1)})."
            )
        return f" {model} was chosen by the {chosen_by}."
    return ""


_MODELS = ("BG/NBD", "MBG/NBD")

#: The customer-value models' facts and the parameters each reports, in the order papers give them.
_PARAMETERS = {
    "clv_bg_nbd": ("BG/NBD", ("r", "alpha", "a", "b")),
    "clv_mbg_nbd": ("MBG/NBD", ("r", "alpha", "a", "b")),
    "clv_gamma_gamma": ("Gamma-Gamma", ("p", "q", "gamma")),
}
_GREEK = {"alpha": "α", "gamma": "γ"}


def _fitted_table(ctx: Context, s: Section) -> bool:
    """The fitted models' parameters under their heading, from the refresh's facts; False without them."""
    fitted = _fitted_parameters(ctx)
    if not fitted:
        return False
    s.parts.append(page.heading("The fitted models"))
    s.parts.append(
        page.table(
            ["model", "parameters", "status", "customers fitted", "log-likelihood", "method"],
            fitted,
            numeric=(3, 4),
            caption="Parameters fitted by this refresh (from its clv_bg_nbd and clv_gamma_gamma facts)",
        )
    )
    return True


def _fitted_parameters(ctx: Context) -> list[list[str]]:
    """One row per customer-value model the refresh fitted, from its facts; empty without them."""
    rows = []
    for fact in ctx.facts:
        if fact.get("name") not in _PARAMETERS:
            continue
        title, names = _PARAMETERS[str(fact["name"])]
        metrics = fact.get("metrics") or {}
        values = [
            f"{_GREEK.get(n, n)} = {float(metrics[n]):.4g}" for n in names if isinstance(metrics.get(n), int | float)
        ]
        rows.append(
            [
                title + (" (chosen)" if metrics.get("chosen") is True else ""),
                ", ".join(values) or "–",
                str(metrics.get("status", "–")).replace("_", " "),
                page.number(metrics.get("fit_customers")),
                page.number(metrics.get("log_likelihood"), 1),
                str(metrics.get("method", "–")),
            ]
        )
    return rows
