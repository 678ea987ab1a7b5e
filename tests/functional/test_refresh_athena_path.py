"""Every refresher's SQL and every report query through the refresh's Athena path, against the stand-in.

Above the size threshold a refresh runs its queries on Athena as ``UNLOAD (...) TO
's3://<bucket>/athena-results/unload/<attempt>/' WITH (format = 'PARQUET')`` and reads the Parquet
back. moto answers no Athena SQL, so :class:`AthenaStandIn` checks each query as Athena/Trino SQL,
answers it with DuckDB over the stand-in's tables and writes the result where UNLOAD writes it; the
engine's own code reads it back and types it, as it reads real UNLOAD output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pytest

from analytics import samples
from analytics.registry import refreshers
from handlers.stages.refresh_service import RefreshService
from query.athena import AthenaEngine
from query.catalog import Catalog
from query.local import DuckDBEngine
from tests.conftest import Lake
from tests.functional.athena_standin import AthenaStandIn
from tests.functional.conftest import Invoke, next_messages, refresh_messages

UNLOADS = "athena-results/unload/"


def land(lake: Lake, invoke: Invoke, key: str, body: bytes) -> None:
    lake.put(key, body)
    assert invoke(next_messages(lake)) == {"batchItemFailures": []}
    [event] = lake.events(1, where=lambda e: e["detail-type"].startswith("Dataset Process"))
    assert event["detail"]["status"] == "succeeded", event["detail"].get("error")


def athena_refresh(lake: Lake) -> tuple[RefreshService, AthenaStandIn]:
    """The refresh function's service with every input above the threshold and the Athena stand-in."""
    from handlers.bootstrap import build_refresh_service
    from handlers.settings import Settings

    settings = replace(
        Settings.from_env(lake.endpoints.refresh_env()), athena_workgroup="lake", refresh_athena_threshold_bytes=0
    )
    service = build_refresh_service(settings)
    athena = AthenaStandIn(lake.glue, lake.s3, lake.endpoints.region, lake.endpoints.endpoint_url)
    service._athena = lambda: athena
    return service, athena


Compared = list[tuple[str, pa.Table, pa.Table]]


@pytest.fixture
def read_back(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> Compared:
    """Each query the Athena path answered: its SQL, what the engine read back, and what DuckDB
    answers for the same SQL over the same tables at that moment."""
    compared: Compared = []
    athena_call: Callable[[AthenaEngine, str], pa.Table] = AthenaEngine.__call__

    def recording(engine: AthenaEngine, sql: str) -> pa.Table:
        result = athena_call(engine, sql)
        catalog = Catalog(lake.glue, lake.endpoints.region, lake.endpoints.endpoint_url, database="lake_curated")
        compared.append((sql, result, DuckDBEngine(catalog).run(sql)))
        return result

    monkeypatch.setattr(AthenaEngine, "__call__", recording)
    return compared


def same_rows(expected: pa.Table, got: pa.Table) -> bool:
    """The same rows in any order (a GROUP BY without ORDER BY has none), floats to 1e-9 relative
    (a sum's last digit depends on the order DuckDB's threads add in)."""
    import math

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple((v is None, round(v, 6) if isinstance(v, float) else v) for v in row.values())

    left, right = sorted(expected.to_pylist(), key=key), sorted(got.to_pylist(), key=key)
    return len(left) == len(right) and all(
        a.keys() == b.keys()
        and all(
            math.isclose(x, y, rel_tol=1e-9) if isinstance(x, float) and isinstance(y, float) else x == y
            for x, y in zip(a.values(), b.values(), strict=True)
        )
        for a, b in zip(left, right, strict=True)
    )


def orders(lake: Lake, invoke: Invoke) -> None:
    land(lake, invoke, "raw/orders/2025.csv", samples.orders_csv(6000, 600, seed=5).encode())


def ad_performance(lake: Lake, invoke: Invoke) -> None:
    land(lake, invoke, "raw/ad_performance/meta.csv", samples.ad_performance_csv(3_000, seed=3).encode())


def experiments(lake: Lake, invoke: Invoke) -> None:
    land(lake, invoke, "raw/experiments/checkout.csv", samples.experiments_csv(2_000, seed=1).encode())


@pytest.mark.parametrize("dataset", [orders, ad_performance, experiments], ids=lambda f: f.__name__)
def test_every_refresher_and_the_report_run_on_athena_and_read_unloaded_parquet_back(
    lake: Lake, invoke: Invoke, read_back: Compared, dataset: Callable[[Lake, Invoke], None]
) -> None:
    # GIVEN a dataset's history above the Athena threshold, and a Parquet file a killed attempt left
    dataset(lake, invoke)
    lake.put(f"{UNLOADS}killed-attempt/part-00000", b"PAR1 not this attempt's result")
    service, athena = athena_refresh(lake)
    [request] = refresh_messages(lake)
    # WHEN the refresh runs
    detail = service.handle_body(request["Body"])
    # THEN it succeeded on Athena: every refresher wrote its tables and the report was drawn from Athena too
    assert detail["status"] == "succeeded", detail.get("error")
    assert detail["engine"] == "athena"
    name = dataset.__name__
    expected = {table for spec in refreshers(name) for table in spec.outputs}
    assert expected <= {o["table"] for o in detail["outputs"]}
    failed = [m for m in detail["models"] if m["metrics"].get("status") == "failed"]
    assert not failed, failed
    assert detail["report"] is not None
    # AND every query went to Athena as an UNLOAD to Parquet (a column-only query where a result was empty)
    assert athena.statements
    for statement in athena.statements:
        assert statement.startswith("UNLOAD (") or statement.endswith(") LIMIT 0"), statement[:200]
    assert any(s.startswith("UNLOAD (") and "customer" in s for s in athena.statements) or name != "orders"
    # AND what came back is what DuckDB answers for the same SQL, typed as the engines type results
    assert len(read_back) >= len(refreshers(name)) + 1
    for sql, result, duckdb in read_back:
        assert result.column_names == duckdb.column_names, sql
        assert result.num_rows == duckdb.num_rows, sql
        assert same_rows(duckdb.cast(result.schema), result), sql
        assert not any(pa.types.is_large_string(t) or pa.types.is_dictionary(t) for t in result.schema.types)
    # AND the attempt's Parquet is gone; the killed attempt's was neither read nor touched
    assert lake.keys(UNLOADS) == [f"{UNLOADS}killed-attempt/part-00000"]


def test_a_query_athena_cannot_run_fails_the_refresh_with_the_query_and_the_reason(
    lake: Lake, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analytics.spec import RefresherSpec
    from handlers.stages import refresh_service as refresher

    def broken(query: Any, context: Any) -> Any:
        return query("SELECT customer_id, no_such_column FROM orders")

    # GIVEN a refresher whose SQL names a column the orders do not have, on the Athena path
    orders(lake, invoke)
    monkeypatch.setattr(
        refresher, "refreshers", lambda dataset: [RefresherSpec("broken", broken, ("orders",), ("broken",))]
    )
    service, _ = athena_refresh(lake)
    [request] = refresh_messages(lake)
    # WHEN the refresh runs
    detail = service.handle_body(request["Body"])
    # THEN it failed for good (no retry can help), saying which query and why
    assert detail["status"] == "failed"
    error = detail["error"]
    assert error["retryable"] is False
    assert "SELECT customer_id, no_such_column FROM orders" in error["message"]
    assert "no_such_column" in error["message"].split("the query:")[0]
    assert lake.keys(UNLOADS) == []


def test_a_refresh_that_scores_from_a_day_runs_its_comparison_and_window_on_athena(
    lake: Lake, invoke: Invoke, read_back: Compared
) -> None:
    # GIVEN ad_performance refreshed once on Athena, then another export landing
    ad_performance(lake, invoke)
    service, athena = athena_refresh(lake)
    [request] = refresh_messages(lake)
    assert service.handle_body(request["Body"])["status"] == "succeeded"
    lake.sqs.delete_message(QueueUrl=lake.endpoints.refresh_queue_url, ReceiptHandle=request["ReceiptHandle"])
    land(lake, invoke, "raw/ad_performance/late.csv", samples.ad_performance_csv(400, seed=4).encode())
    [request] = refresh_messages(lake)
    read_back.clear()
    # WHEN the refresh runs again
    detail = service.handle_body(request["Body"])
    # THEN it compared with campaign_kpis and read the window on Athena, and scored from a day
    assert detail["status"] == "succeeded", detail.get("error")
    [fact] = [m["metrics"] for m in detail["models"] if m["name"] == "kpi_anomalies_history"]
    assert fact["scored_from"] is not None
    assert any("FULL OUTER JOIN" in s for s in athena.statements)
    assert any("first_day" in s and "PARTITION BY" in s for s in athena.statements)
    # AND what came back is what DuckDB answers for the same SQL
    for sql, result, duckdb in read_back:
        assert result.column_names == duckdb.column_names, sql
        assert same_rows(duckdb.cast(result.schema), result), sql
