"""`lake try` on vendor exports as downloaded: which export it recognised, what it left out, and the
settings that would map an export it does not know (run offline, on the processor's own code)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lake.cli.trial import render, run_trial
from tests import export_fixtures as fx


def test_try_names_the_recognised_export_and_what_it_left_out(tmp_path: Path) -> None:
    path = tmp_path / "campaigns.csv"
    path.write_text(fx.GOOGLE_ADS.csv())
    trial = run_trial(path, "ad_performance", None)
    out = render(trial)
    assert trial.accepted and trial.source_format == "google_ads"
    assert "recognised: Google Ads report" in out and "channel = google_ads" in out
    assert "2 line(s) above the header" in out and "2 summary row(s)" in out
    assert "quarantine: none" in out


def test_try_prints_the_settings_that_would_map_an_unknown_export(tmp_path: Path) -> None:
    path = tmp_path / "pins.csv"
    path.write_text(
        "Date,Campaign name,Impressions,Pin clicks,Spend in account currency,Total conversions,Total order value\n"
        "2026-01-01,Boards,1000,20,12.50,1,40.00\n"
    )
    trial = run_trial(path, "ad_performance", None)
    out = render(trial)
    assert not trial.accepted
    # the JSON block after the advice parses, and is the mapping the file needs
    block = out[out.index("put this in settings/ad_performance.json") :]
    pasted = json.loads(re.search(r"\{.*\}", block, re.DOTALL).group(0))  # type: ignore[union-attr]
    assert pasted["columns"] == {
        "clicks": "Pin clicks",
        "spend": "Spend in account currency",
        "conversions": "Total conversions",
        "revenue": "Total order value",
    }
    assert list(pasted["constants"]) == ["channel"]


def test_try_of_a_shopify_export_shows_pseudonyms_not_emails(tmp_path: Path) -> None:
    path = tmp_path / "orders_export.csv"
    path.write_text(fx.SHOPIFY_ORDERS.csv())
    trial = run_trial(path, "orders", None)
    assert trial.accepted and trial.source_format == "shopify_orders"
    assert "@" not in render(trial)
