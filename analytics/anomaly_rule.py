"""The rule that flags a KPI day as an anomaly, shared by a file's own days (``ad_performance``) and
the dataset's whole history (``kpi_history``): which metrics are watched, how much history a series
needs, and how far off a day must be.
"""

from __future__ import annotations

import numpy as np

#: KPI columns of ``campaign_kpis`` that ``kpi_anomalies`` watches.
ANOMALY_METRICS = ("spend", "ctr", "cvr", "cpa", "roas")
#: A series needs this many non-null days before its median and MAD mean anything.
MIN_HISTORY = 7
#: Iglewicz and Hoaglin's cut-off for the modified z-score.
Z_THRESHOLD = 3.5
#: A day is only an anomaly if it is also materially off: at least 25% away from the series
#: median. With hundreds of series × five metrics, a 3.5 z alone flags steady series' ordinary
#: 3-sigma days; nobody acts on a CTR 10% below its median.
MIN_RELATIVE_CHANGE = 0.25


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with NaN (null in Arrow) wherever the denominator is 0 or null."""
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    out = np.full(num.shape, np.nan)
    ok = (den != 0) & ~np.isnan(den) & ~np.isnan(num)
    np.divide(num, den, out=out, where=ok)
    return out
