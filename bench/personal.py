"""Benchmark of pseudonymising personal data, against writing the same rows as Parquet.

Run with ``uv run python -m bench.personal``. On 1,000,000 rows in memory, in batches of 131,072
rows (what the staging sink receives), each the best of ``--repeat`` runs:

1. orders: a customer column of e-mail addresses (100,000 customers) among an order id, an amount
   and a channel: the e-mails are found by content and pseudonymised;
2. contacts: e-mail, full name, phone and street columns found by header (100,000 people);
3. worst case: 1,000,000 distinct e-mail addresses (each one hashed);
4. nothing personal: the same orders with numeric customer ids (the cost of looking);

against ``pyarrow.parquet.write_table`` of the same rows (snappy, to memory), the least the
per-file stage does with them. Prints seconds and the ratio. No assertion: exit code 0 unless
something crashed.
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from analytics.personal import Pseudonymiser

ROWS = 1_000_000
BATCH = 131_072
KEY = b"bench-key-" + bytes(range(32))


def _tables(rows: int, people: int, seed: int = 7) -> dict[str, pa.Table]:
    rng = np.random.default_rng(seed)
    who = rng.integers(0, people, rows)
    emails = pa.array([f"customer{i}@example.com" for i in range(people)]).take(pa.array(who))
    base = {
        "order_id": pa.array([f"O-{i}" for i in range(rows)]),
        "amount": pa.array(rng.gamma(2.0, 30.0, rows).round(2)),
        "channel": pa.array(["web", "app", "store"]).take(pa.array(rng.integers(0, 3, rows))),
    }
    return {
        "orders (e-mail customer ids, found by content)": pa.table({**base, "customer_id": emails}),
        "contacts (e-mail, name, phone, street by header)": pa.table(
            {
                "email": emails,
                "full_name": pa.array([f"Person {i} Example" for i in range(people)]).take(pa.array(who)),
                "phone": pa.array([f"+44 20 {i:07d}" for i in range(people)]).take(pa.array(who)),
                "billing_address1": pa.array([f"{i % 300} High Street" for i in range(people)]).take(pa.array(who)),
                "amount": base["amount"],
            }
        ),
        "worst case (1,000,000 distinct e-mails)": pa.table(
            {**base, "customer_id": pa.array([f"person{i}@example.com" for i in range(rows)])}
        ),
        "nothing personal (numeric customer ids)": pa.table({**base, "customer_id": pa.array(who.astype(str))}),
    }


def _best(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return min(times)


def _pseudonymise(table: pa.Table) -> None:
    p = Pseudonymiser(KEY)
    for batch in table.to_batches(max_chunksize=BATCH):
        p.table(pa.Table.from_batches([batch]), "bench")


def _parquet(table: pa.Table) -> None:
    pq.write_table(table, io.BytesIO(), compression="snappy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=ROWS)
    args = parser.parse_args(argv)
    for name, table in _tables(args.rows, max(1, args.rows // 10)).items():
        baseline = _best(functools.partial(_parquet, table), args.repeat)
        measured = _best(functools.partial(_pseudonymise, table), args.repeat)
        print(
            f"{name}: pseudonymising {table.num_rows:,} rows {measured:.2f} s; "
            f"writing them as Parquet {baseline:.2f} s ({measured / baseline:.2f}x)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
