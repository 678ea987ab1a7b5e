"""The ``experiments`` report: per experiment, rates, lift, the always-valid interval over time, SRM."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any

from reports import charts, page
from reports.base import Context, Section, as_of_dates, choose_as_of, rows, sql_date

HISTORY = "experiment_results_history"
#: Experiments drawn in one page; the rest are listed by name.
MAX_EXPERIMENTS = 12


def srm_verdict(variants: list[dict[str, Any]]) -> tuple[str, str]:
    """The sample-ratio check in words, and ``good`` / ``bad`` / ``""`` for its colour."""
    split = " / ".join(f"{v['variant']} {int(v['users'] or 0):,}" for v in variants)
    if len(variants) < 2:
        return f"Sample ratio cannot be checked: one variant only ({split} users).", ""
    p = variants[0].get("srm_p_value")
    flag = variants[0].get("srm_flag")
    if p is None or flag is None:
        return f"Sample ratio not tested ({split} users).", ""
    if flag:
        return (
            f"Sample ratio mismatch: users split {split}, far from the equal split expected "
            f"(p = {page.p_value(p)} < 0.001). Distrust the other figures until the assignment is fixed.",
            "bad",
        )
    return f"No sample ratio mismatch: users split {split}, as an equal split would (p = {page.p_value(p)}).", "good"


def sections(ctx: Context) -> tuple[list[Section], dt.date | None]:
    if not ctx.sources.has(HISTORY):
        s = Section("Experiments", "experiments")
        s.note(f"no {HISTORY} table yet: results over history are written by the experiments refresh")
        return [s], None
    available = as_of_dates(ctx.query, HISTORY)
    as_of = choose_as_of(ctx.dataset, HISTORY, available, ctx.as_of)
    if as_of is None:
        s = Section("Experiments", "experiments")
        s.note(f"{HISTORY} has no rows yet")
        return [s], None
    current = rows(
        ctx.query(
            """
            SELECT experiment_id, variant, is_control, users, conversions, conversion_rate, ci_low, ci_high,
                   abs_lift, rel_lift, diff_ci_low, diff_ci_high, always_valid_ci_low, always_valid_ci_high,
                   always_valid_p_value, always_valid_significant, srm_p_value, srm_flag, control_variant
            FROM experiment_results_history """
            f"WHERE as_of = {sql_date(as_of)} ORDER BY experiment_id, is_control DESC, variant"
        )
    )
    over_time = rows(
        ctx.query(
            """
            SELECT experiment_id, variant, as_of, abs_lift, always_valid_ci_low, always_valid_ci_high
            FROM experiment_results_history """
            f"WHERE as_of <= {sql_date(as_of)} AND NOT is_control ORDER BY experiment_id, variant, as_of"
        )
    )
    by_experiment: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in current:
        by_experiment[str(r["experiment_id"])].append(r)
    history: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in over_time:
        history[(str(r["experiment_id"]), str(r["variant"]))].append(r)
    out: list[Section] = []
    names = sorted(by_experiment)
    for n, experiment in enumerate(names[:MAX_EXPERIMENTS]):
        out.append(_experiment(n, experiment, by_experiment[experiment], history, as_of))
    if len(names) > MAX_EXPERIMENTS:
        rest = Section("More experiments", "more-experiments")
        rest.note(
            f"{len(names) - MAX_EXPERIMENTS} more experiments are not drawn (a page draws {MAX_EXPERIMENTS}): "
            + ", ".join(names[MAX_EXPERIMENTS:])
        )
        out.append(rest)
    return out, as_of


def _experiment(
    n: int,
    experiment: str,
    variants: list[dict[str, Any]],
    history: dict[tuple[str, str], list[dict[str, Any]]],
    as_of: dt.date,
) -> Section:
    s = Section(
        f"Experiment {experiment}",
        f"experiment-{n}",
        "Left: each variant's conversion rate with its 95% Wilson interval. Right: each variant's lift over the "
        "control (percentage points) with the fixed-n interval (thin, valid for one planned look) and the "
        "always-valid interval (thick, valid however often you look). An interval clear of zero is a difference.",
    )
    verdict, css = srm_verdict(variants)
    s.parts.append(page.paragraph(verdict, f"verdict {css}".strip()))
    treated = [v for v in variants if not v["is_control"]]
    if len(variants) < 2:
        s.note(f"{experiment} has one variant: there is no control to compare with, so no lift and no SRM check")
    slug = f"exp{n}"

    def draw(figure: Any) -> None:
        left, right = figure.subplots(1, 2, width_ratios=(1, 1.2) if treated else (1, 0.01))
        ys = list(range(len(variants)))
        rates = [float(v["conversion_rate"] or 0.0) * 100 for v in variants]
        lows = [
            max(r - float(v["ci_low"] if v["ci_low"] is not None else v["conversion_rate"] or 0) * 100, 0)
            for r, v in zip(rates, variants, strict=True)
        ]
        highs = [
            max(float(v["ci_high"] if v["ci_high"] is not None else v["conversion_rate"] or 0) * 100 - r, 0)
            for r, v in zip(rates, variants, strict=True)
        ]
        colours = [charts.GREY if v["is_control"] else charts.colour(i) for i, v in enumerate(variants)]
        for i in ys:
            line = left.errorbar(
                [rates[i]], [i], xerr=[[lows[i]], [highs[i]]], fmt="o", color=colours[i], capsize=4, markersize=6
            )
            charts.mark(line.lines[0], f"{slug}-rate-{i}")
        left.set_yticks(
            ys, [charts.short(str(v["variant"]) + (" (control)" if v["is_control"] else ""), 24) for v in variants]
        )
        # Rows half a step from the edges, top to bottom in table order, however few there are.
        left.set_ylim(len(variants) - 0.5, -0.5)
        left.set_xlabel("conversion rate (%)")
        if not treated:
            right.set_axis_off()
            return
        ty = list(range(len(treated)))
        for i, v in enumerate(treated):
            lift = float(v["abs_lift"] or 0.0) * 100
            for low_key, high_key, width, offset, name in (
                ("diff_ci_low", "diff_ci_high", 1.2, -0.12, "fixed-n 95%"),
                ("always_valid_ci_low", "always_valid_ci_high", 4.0, 0.12, "always-valid 95%"),
            ):
                lo, hi = v[low_key], v[high_key]
                if lo is None or hi is None:
                    continue
                charts.mark(
                    right.plot(
                        [lo * 100, hi * 100],
                        [i + offset] * 2,
                        color=charts.colour(variants.index(v)),
                        linewidth=width,
                        solid_capstyle="butt",
                        label=name if i == 0 else None,
                    )[0],
                    f"{slug}-interval-{i}-{name[:5]}",
                )
            charts.mark(right.plot([lift], [i], "o", color="black", markersize=5)[0], f"{slug}-lift-{i}")
        right.axvline(0, color=charts.GREY, linewidth=1)
        right.set_yticks(ty, [charts.short(str(v["variant"]), 20) for v in treated])
        right.set_ylim(len(treated) - 0.5, -0.5)
        right.set_xlabel("lift over control (percentage points)")
        right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: never on an interval

    s.parts.append(
        page.figure(
            charts.svg(
                draw, slug=slug, height=1.1 + 0.45 * max(len(variants), 2), label=f"rates and lift of {experiment}"
            ),
            f"Conversion rate per variant and lift over the control, as of {as_of}",
        )
    )
    s.parts.append(
        page.table(
            [
                "variant",
                "users",
                "conversions",
                "rate",
                "95% interval",
                "lift (pp)",
                "always-valid interval (pp)",
                "always-valid p",
            ],
            [
                [
                    str(v["variant"]) + (" (control)" if v["is_control"] else ""),
                    page.number(v["users"]),
                    page.number(v["conversions"]),
                    page.number(v["conversion_rate"], 2, percent=True),
                    f"{page.number(v['ci_low'], 2, percent=True)} to {page.number(v['ci_high'], 2, percent=True)}",
                    "–"
                    if v["is_control"]
                    else page.number(None if v["abs_lift"] is None else v["abs_lift"] * 100, 2, signed=True),
                    "–"
                    if v["is_control"] or v["always_valid_ci_low"] is None
                    else f"{page.number(v['always_valid_ci_low'] * 100, 2, signed=True)} to "
                    f"{page.number(v['always_valid_ci_high'] * 100, 2, signed=True)}",
                    "–" if v["is_control"] else page.p_value(v["always_valid_p_value"]),
                ]
                for v in variants
            ],
            numeric=(1, 2, 3, 5, 7),
        )
    )
    if treated:
        series = {str(v["variant"]): history.get((experiment, str(v["variant"])), []) for v in treated}
        points = max((len(p) for p in series.values()), default=0)
        if points < 2:
            s.note(
                f"one refresh of {experiment} so far: the always-valid interval over time gets a point per refresh "
                "and is drawn from the second on"
            )
        else:

            def draw_time(figure: Any) -> None:
                ax = figure.subplots()
                for k, (variant, pts) in enumerate(series.items()):
                    c = charts.colour(variants.index(next(v for v in treated if str(v["variant"]) == variant)))
                    xs = [p["as_of"] for p in pts]
                    # A missing bound is a gap, never 0: a band touching zero is what a reader watches for.
                    lo = [_percent(p["always_valid_ci_low"]) for p in pts]
                    hi = [_percent(p["always_valid_ci_high"]) for p in pts]
                    band = ax.fill_between(xs, lo, hi, color=c, alpha=0.25, linewidth=0)
                    charts.mark(band, f"{slug}-band-{k}")
                    charts.mark(
                        ax.plot(
                            xs,
                            [_percent(p["abs_lift"]) for p in pts],
                            "o-",
                            color=c,
                            label=charts.short(variant, 20),
                            markersize=4,
                        )[0],
                        f"{slug}-lift-time-{k}",
                    )
                ax.axhline(0, color=charts.GREY, linewidth=1)
                ax.set_ylabel("lift (percentage points)")
                ax.set_xlabel("as_of (one point per refresh)")
                charts.date_axis(ax)
                ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: never on a point

            s.parts.append(
                page.figure(
                    charts.svg(
                        draw_time,
                        slug=f"{slug}-time",
                        height=2.8,
                        label=f"always-valid interval of {experiment} over time",
                    ),
                    "Lift and its always-valid 95% interval at each refresh: once the band leaves zero, the "
                    "difference is real however often you looked",
                )
            )
    return s


def _percent(value: float | None) -> float:
    """A share as percentage points; NaN (a gap in the chart) when missing."""
    return math.nan if value is None else value * 100
