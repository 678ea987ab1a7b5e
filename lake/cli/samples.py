"""Small realistic sample files for the demo: generic datasets, some bad rows, an unreadable file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from analytics.samples import OrdersSample


def web_sessions_csv(rows: int = 1_200, seed: int = 7) -> str:
    """A web-analytics export (semicolon separated, EU style) with a few duplicates and bad lines."""
    rng = np.random.default_rng(seed)
    pages = ["/", "/pricing", "/blog/launch", "/signup", "/docs/getting-started"]
    sources = ["google", "newsletter", "linkedin", "direct", "partner"]
    lines = ["Session ID;Visitor ID;Started At;Landing Page;Traffic Source;Pages Viewed;Converted"]
    for i in range(rows):
        day = 1 + int(rng.integers(0, 28))
        lines.append(
            f"S{100000 + i};{int(rng.integers(1, 400)):06d};2026-10-{day:02d} {int(rng.integers(0, 24)):02d}:"
            f"{int(rng.integers(0, 60)):02d}:00;{pages[int(rng.integers(0, 5))]};{sources[int(rng.integers(0, 5))]};"
            f"{int(rng.integers(1, 12))};{'yes' if rng.random() < 0.08 else 'no'}"
        )
    lines += lines[5:8]  # an export that repeated a few rows
    lines.insert(40, "S999999;000017;2026-10-03 10:00:00;/pricing;google")  # a line cut short
    lines.insert(90, "S999998;000018;not a time;/;direct;3;no")
    return "\n".join(lines) + "\n"


def crm_contacts_jsonl(rows: int = 300, seed: int = 11) -> str:
    """CRM contacts as JSON lines."""
    rng = np.random.default_rng(seed)
    countries = ["DE", "FR", "US", "GB", "ES"]
    out = []
    for i in range(rows):
        out.append(
            json.dumps(
                {
                    "contactId": f"{i + 1:05d}",
                    "email": f"person{i + 1}@example.com",
                    "country": countries[int(rng.integers(0, 5))],
                    "lifetimeValue": round(float(rng.gamma(2.0, 120.0)), 2),
                    "optedIn": bool(rng.random() < 0.6),
                    "createdAt": f"2025-{1 + int(rng.integers(0, 12)):02d}-{1 + int(rng.integers(0, 28)):02d}",
                }
            )
        )
    return "\n".join(out) + "\n"


#: The demo's two orders exports: two years of history up to December, then January's orders.
DEMO_ORDERS_FIRST = "shop_orders_2024-01_2025-12.csv"
DEMO_ORDERS_NEXT = "shop_orders_2026-01.csv"


def _demo_orders() -> OrdersSample:
    from analytics import samples as marketing

    return marketing.orders_sample(6_000, seed=12)


def write_next_month_orders(folder: Path) -> Path:
    """Write the demo's second orders export: January 2026, after :data:`DEMO_ORDERS_FIRST`'s history.

    Some customers order again, some lapse, new ones arrive (``analytics.samples.next_month_orders``).
    """
    from analytics import samples as marketing

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DEMO_ORDERS_NEXT
    path.write_text(marketing.to_csv(marketing.next_month_orders(_demo_orders(), "2026-01-01", seed=14)))
    return path


def write_demo_files(folder: Path) -> dict[str, Path]:
    """Write the demo's first inputs (the second orders export comes later, from
    :func:`write_next_month_orders`); returns ``{dataset/file name: path}``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    sessions = folder / "web_sessions-2026-10.csv"
    sessions.write_text(web_sessions_csv(), encoding="utf-8-sig")  # Excel-style BOM
    files["web_sessions"] = sessions
    contacts = folder / "crm_contacts.jsonl"
    contacts.write_text(crm_contacts_jsonl())
    files["crm_contacts"] = contacts
    from analytics import samples as marketing

    ads = folder / "meta_ads_2026-q3.csv"
    ads.write_text(marketing.ad_performance_csv(2_700, seed=11))
    files["ad_performance"] = ads
    orders = folder / DEMO_ORDERS_FIRST
    orders.write_text(marketing.to_csv(_demo_orders().table))
    files["orders"] = orders
    experiments = folder / "ab_exposures.csv"
    experiments.write_text(marketing.experiments_csv(5_000, seed=13))
    files["experiments"] = experiments
    broken = folder / "web_sessions-2026-09.csv.gz"
    compressed = gzip.compress(web_sessions_csv(rows=2_000, seed=3).encode())
    broken.write_bytes(compressed[: len(compressed) // 2])  # an upload that was cut off
    files["web_sessions/broken"] = broken
    return files
