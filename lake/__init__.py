"""The lake from Python and the ``lake`` command.

>>> import lake
>>> orders = lake.read("orders")                      # pandas, with the catalog's types
>>> lake.query("SELECT region, sum(amount) FROM sales GROUP BY 1")
>>> lake.read("orders", arrow=True)                   # a pyarrow Table

Configured like the command: ``LAKE_ENDPOINT_URL`` (or ``endpoint_url=``) for the local stand-in,
else the deployed stack. See docs/python.md. Importing ``lake`` loads nothing heavy: pandas,
pyarrow and boto3 load on the first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lake.api import LakeError, query, read

__all__ = ["LakeError", "query", "read"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lake import api

        return getattr(api, name)
    raise AttributeError(f"module 'lake' has no attribute {name!r}")
