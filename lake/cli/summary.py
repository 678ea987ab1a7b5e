"""Readable one-line summaries of completion events, for people watching a terminal."""

from __future__ import annotations

from typing import Any


def summarize(detail: dict[str, Any]) -> str:
    """``✔ raw/x/a.csv → x: 1,200 rows ...`` or ``✘ raw/x/b.csv: <what is wrong and what to do>``;
    a refresh's ``⟳ orders models over 3 snapshot(s) → customer_rfm (…) …``."""
    if "inputs" in detail and "source" not in detail:
        return _refresh(detail)
    source = detail.get("source", {})
    key = source.get("key") or "(unknown object)"
    rows = detail.get("rows", {})
    quarantine = detail.get("quarantine", {})
    seconds = detail.get("timings_ms", {}).get("total", 0) / 1000
    change = detail.get("change")
    outputs = detail.get("outputs", [])
    if detail.get("status") == "succeeded" and change == "unchanged":
        return f"· {key}: {detail.get('note') or 'nothing changed'}"
    if detail.get("status") == "succeeded" and change == "removed":
        names = ", ".join(o.get("view") or o["table"] for o in outputs) or "no table"
        return f"✔ {key} deleted → its rows removed from {names} [{seconds:.1f}s]"
    if detail.get("status") == "succeeded":
        tables = ", ".join(f"{o.get('view') or o['table']} ({_count(o['rows'], 'row')})" for o in outputs)
        extras = ["replaced the key's earlier rows"] if change == "replaced" else []
        if rows.get("duplicates_dropped"):
            extras.append(f"{_count(rows['duplicates_dropped'], 'duplicate')} dropped")
        elif rows.get("duplicates"):
            extras.append(f"{_count(rows['duplicates'], 'repeated row')} kept")
        if quarantine.get("rows"):
            reasons = ", ".join(f"{code} {n:,}" for code, n in sorted(quarantine.get("reasons", {}).items()))
            extras.append(f"{_count(quarantine['rows'], 'row')} quarantined ({reasons})")
        for model in detail.get("models", []):
            shown = [(k, v) for k, v in model.get("metrics", {}).items() if len(_short(v)) <= 24][:4]
            metrics = ", ".join(f"{k}={_short(v)}" for k, v in shown)
            extras.append(f"{model['name']}: {metrics}")
        tail = f"; {'; '.join(extras)}" if extras else ""
        return f"✔ {key} → {tables}{tail} [{seconds:.1f}s]"
    error = detail.get("error", {})
    message = str(error.get("message", "failed")).removeprefix(f"{key}: ")
    kept = quarantine.get("table") and quarantine.get("rows")
    where = f"; rejected rows kept in {quarantine['table']}" if kept else ""
    retry = " (will be retried)" if error.get("retryable") else ""
    return f"✘ {key}: {message}{where}{retry}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _count(n: int, noun: str) -> str:
    """``1 row``, ``1,200 rows``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _refresh(detail: dict[str, Any]) -> str:
    """One line for ``Dataset Models Updated`` / ``Dataset Models Failed``."""
    dataset = detail.get("dataset") or "(unknown dataset)"
    seconds = detail.get("timings_ms", {}).get("total", 0) / 1000
    inputs = ", ".join(f"{i['table']}@{i['snapshot_id']}" for i in detail.get("inputs", []))
    if detail.get("status") != "succeeded":
        return f"✘ refresh of {dataset} models ({inputs}): {detail.get('error', {}).get('message', 'failed')}"
    tables = ", ".join(
        f"{o['table']} as of {o['as_of']} ({_count(o['rows'], 'row')})" for o in detail.get("outputs", [])
    )
    facts = []
    for model in detail.get("models", []):
        shown = [(k, v) for k, v in model.get("metrics", {}).items() if k != "method" and len(_short(v)) <= 24][:4]
        facts.append(f"{model['name']}: " + ", ".join(f"{k}={_short(v)}" for k, v in shown))
    tail = f"; {'; '.join(facts)}" if facts else ""
    if detail.get("report"):
        tail += f"; report {detail['report']['uri']}"
    return f"⟳ {dataset} models over {inputs} [{detail.get('engine')}] → {tables or 'nothing'}{tail} [{seconds:.1f}s]"
