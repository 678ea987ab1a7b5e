"""Type names as Athena shows them: from Iceberg's types (a table's columns) and from the Presto
types a view declares its columns with."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyiceberg.types import IcebergType

#: Athena (Hive DDL) type -> the Presto/Trino type a view's columns are declared with.
PRESTO_TYPES = {
    "string": "varchar",
    "int": "integer",
    "bigint": "bigint",
    "double": "double",
    "float": "real",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp(6)",
    "binary": "varbinary",
}


def athena_type(kind: IcebergType) -> str:
    """The Athena (Glue) type of an Iceberg type, as Athena shows an Iceberg table's columns."""
    from pyiceberg import types as t

    if isinstance(kind, t.DecimalType):
        return f"decimal({kind.precision},{kind.scale})"
    if isinstance(kind, t.ListType):
        return f"array<{athena_type(kind.element_type)}>"
    if isinstance(kind, t.MapType):
        return f"map<{athena_type(kind.key_type)},{athena_type(kind.value_type)}>"
    if isinstance(kind, t.StructType):
        return "struct<" + ",".join(f"{f.name}:{athena_type(f.field_type)}" for f in kind.fields) + ">"
    simple: dict[type, str] = {
        t.BooleanType: "boolean",
        t.IntegerType: "int",
        t.LongType: "bigint",
        t.FloatType: "float",
        t.DoubleType: "double",
        t.DateType: "date",
        t.TimeType: "string",
        t.TimestampType: "timestamp",
        t.TimestamptzType: "timestamp",
        t.StringType: "string",
        t.UUIDType: "string",
        t.BinaryType: "binary",
        t.FixedType: "binary",
    }
    return simple.get(type(kind), "string")


def athena_type_of_presto(presto_type: str) -> str:
    """The Athena (Hive DDL) name of a Presto type a view declares (``varchar(10)`` is ``string``)."""
    kind = presto_type.strip().lower()
    if kind.startswith("varchar") or kind == "char":
        return "string"
    if kind.startswith("timestamp"):
        return "timestamp"
    return {"integer": "int", "real": "float", "varbinary": "binary"}.get(kind, kind)
