"""Ad platforms' own exports, recognised as downloaded and mapped onto the ``ad_performance`` contract.

Each shape is written from the vendor's public description of its report columns (linked in
``documented_at``); the test fixtures are written from the same descriptions. Header patterns are
regular expressions over normalised names (lower-case, other characters as ``_``), so
``Amount spent (EUR)`` is ``amount_spent_eur``. None of these exports has a channel column: the
platform is the channel.
"""

from __future__ import annotations

from analytics.exports import KnownExport

#: ``Cost``/``Spend (USD)``/``Amount spent (EUR)``: the currency a header names, for the currency column.
_CURRENCY_IN_HEADER = r"\(([A-Z]{3})\)"

GOOGLE_ADS = KnownExport(
    name="google_ads",
    title="Google Ads report (UI download, Excel CSV or Editor)",
    # "Impr." and "Conv. value" are Google's own abbreviations; "Cost" without a currency.
    signature=(r"impr", r"cost", r"campaign", r"conv_value|conversions|conv"),
    columns={
        "date": r"day|date|week",
        "impressions": r"impr",
        "spend": r"cost",
        "conversions": r"conversions|conv",
        "revenue": r"conv_value|total_conv_value",
        "currency": r"currency_code|currency",
    },
    constants={"channel": "google_ads"},
    documented_at="https://support.google.com/google-ads/answer/2404058 (download a report; column names)",
)

MICROSOFT_ADS = KnownExport(
    name="microsoft_ads",
    title="Microsoft Advertising report",
    signature=(r"gregorian_date|time_period", r"spend", r"impressions|impr", r"campaign_name|campaign"),
    columns={
        "date": r"gregorian_date|time_period",
        "impressions": r"impressions|impr",
        "spend": r"spend",
        "conversions": r"conversions|conv",
        "revenue": r"revenue",
        "currency": r"currency_code|currency",
    },
    constants={"channel": "microsoft_ads"},
    documented_at="https://learn.microsoft.com/advertising/reporting-service/campaignperformancereportcolumn",
)

META_ADS = KnownExport(
    name="meta_ads",
    title="Meta Ads Manager export",
    signature=(r"reporting_starts", r"amount_spent(_[a-z]{3})?", r"campaign_name"),
    columns={
        "date": r"day|reporting_starts",
        "spend": r"amount_spent(_[a-z]{3})?",
        "clicks": r"link_clicks|clicks_all",
        "conversions": r"purchases|results",
        "revenue": r"purchases_conversion_value|purchase_conversion_value|website_purchases_conversion_value",
        "ad_group": r"ad_set_name",
    },
    constants={"channel": "meta"},
    from_header={"currency": (r"amount_spent_[a-z]{3}", _CURRENCY_IN_HEADER)},
    documented_at="https://www.facebook.com/business/help/1695754927158071 (Ads Manager: export table data)",
)

TIKTOK_ADS = KnownExport(
    name="tiktok_ads",
    title="TikTok Ads Manager report",
    signature=(r"cost", r"impressions", r"clicks_destination|cpc_destination|ctr_destination"),
    columns={
        "date": r"by_day|date|stat_time_day",
        "campaign": r"campaign_name|campaign",
        "ad_group": r"ad_group_name",
        "spend": r"cost",
        "clicks": r"clicks_destination|clicks_all",
        "conversions": r"conversions",
        "revenue": r"total_complete_payment|complete_payment_value|total_purchase_value|purchase_value",
        "currency": r"currency",
    },
    constants={"channel": "tiktok"},
    documented_at="https://ads.tiktok.com/help/article?aid=10000166 (basic metrics and definitions)",
)

LINKEDIN_ADS = KnownExport(
    name="linkedin_ads",
    title="LinkedIn Campaign Manager campaign performance report",
    signature=(r"campaign_name", r"total_spent", r"impressions"),
    columns={
        "date": r"start_date_in_utc|start_date|date",
        "spend": r"total_spent",
        "clicks": r"clicks",
        "conversions": r"conversions",
        "revenue": r"total_conversion_value|conversion_value(_in_local_currency)?",
        "currency": r"currency",
    },
    constants={"channel": "linkedin"},
    documented_at="https://www.linkedin.com/help/lms/answer/a424577 (campaign performance report columns)",
)

#: Every ad platform export ``ad_performance`` recognises.
AD_EXPORTS = (GOOGLE_ADS, MICROSOFT_ADS, META_ADS, TIKTOK_ADS, LINKEDIN_ADS)
