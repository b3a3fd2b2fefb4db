"""Declarative base and reusable column types shared by every model."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from sqlalchemy import BigInteger, Date, DateTime, Enum, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, mapped_column

# Constraint names are fixed so Alembic migrations and models agree on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit keys on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the rowid alias that autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")

intpk = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]
str_code = Annotated[str, mapped_column(String(32))]
str_name = Annotated[str, mapped_column(String(200))]


def enum_column(enum_cls: type[StrEnum], name: str) -> Enum:
    """Store a StrEnum by its value as VARCHAR with a CHECK constraint: portable and readable.

    On PostgreSQL migration 0022 rewrites each such CHECK as one array constant (``status::text = ANY
    ('{…}'::text[])``; decision 0062): a migration that changes an enum's values writes its new CHECK in
    that form too, not as SQLAlchemy's ``IN`` list, which PostgreSQL reads and folds again at every write."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar = {
        datetime: DateTime(timezone=False),
        date: Date(),
    }
