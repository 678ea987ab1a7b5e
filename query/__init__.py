"""The lake's one query engine: Athena SQL over the lake's Iceberg tables and views.

Every reader of the lake goes through it: the refresh (its refreshers' and report's SQL), ``lake
query``, ``lake report``, and ``lake.read`` / ``lake.query``.

- :class:`Catalog` resolves a name to an Iceberg table or an Athena view and pins a table's
  snapshot (:meth:`Catalog.pin`);
- :class:`DuckDBEngine` runs Athena SQL on DuckDB: views expanded, the SQL translated for DuckDB
  (:mod:`query.sql`), each pinned snapshot bound as an Arrow dataset that DuckDB reads only the
  columns it needs of (:mod:`query.scan`);
- :class:`AthenaEngine` runs the same SQL on Athena, for what outgrows one function.

Both engines are callables ``sql -> pyarrow.Table``, named and typed as Athena gives results.
Errors: :class:`QueryError` (the query or a name must be fixed) and :class:`AthenaQueryError`
(Athena did not finish; worth running again). Heavy libraries (DuckDB, sqlglot, pyiceberg) load
on first use.
"""

from __future__ import annotations

from query.athena import AthenaEngine
from query.catalog import Catalog, Pinned
from query.errors import AthenaQueryError, QueryError
from query.local import DuckDBEngine
from query.sql import TableRef

__all__ = ["AthenaEngine", "AthenaQueryError", "Catalog", "DuckDBEngine", "Pinned", "QueryError", "TableRef"]
