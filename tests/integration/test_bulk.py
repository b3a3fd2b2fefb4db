"""db.bulk.read_frame (decision 0065): a read as one CSV text from PostgreSQL gives the frame the driver's
tuples give (text_frame), value for value: text with commas, quotes, line breaks and Chinese, empty
text beside NULL, floats to the last bit, integers with and without NULLs, times read as text."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    type_coerce,
)

from db.bulk import csv_frame, plain_rows, read_frame, text_frame

ODD = Table(
    "bulk_read_check",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("title", String(200)),
    Column("address", String(300)),
    Column("lon", Float),
    Column("lat", Float),
    Column("merged_into_id", BigInteger),
    Column("reported_at", DateTime),
    Column("day", Date),
)
TEXTS = [
    "路面垃圾",
    'a "quoted", with comma',
    "two\nlines",
    "",
    "\r\n",
    "tab\there",
    "back\\slash",
    "x,y",
    None,
]


@pytest.fixture
def odd(empty_engine):
    rng = np.random.default_rng(5)
    rows = []
    for i in range(600):
        rows.append(
            {
                "id": i + 1,
                "title": TEXTS[i % len(TEXTS)],
                "address": None if i % 7 == 0 else f"衢州市柯城区{i}号, 3楼",
                "lon": float(118 + rng.random()) if i % 11 else None,
                "lat": [0.1 + 0.2, 1e-300, -0.0, 28.940000000000001, math.pi][i % 5],
                "merged_into_id": None if i % 3 else 2**40 + i,
                "reported_at": datetime(2026, 11, 21, 8, 30, i % 60, (i * 7919) % 1_000_000 if i % 2 else 0),
                "day": date(2026, 11, 1 + i % 30),
            }
        )
    ODD.create(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(insert(ODD), rows)
    yield empty_engine
    ODD.drop(empty_engine)


def _read(conn, where=()):
    columns = [
        ODD.c.id,
        ODD.c.title,
        ODD.c.address,
        ODD.c.lon,
        ODD.c.lat,
        ODD.c.merged_into_id,
        type_coerce(ODD.c.day, String).label("day"),
    ]
    names = ["id", "title", "address", "lon", "lat", "merged_into_id", "day"]
    statement = select(*columns).where(*where).order_by(ODD.c.id)
    return read_frame(conn, statement, names), text_frame(plain_rows(conn, statement), names)


def test_a_read_as_csv_gives_what_the_driver_s_tuples_give(odd):
    with odd.connect() as conn:
        fast, plain = _read(conn)
    assert len(fast) == 600
    for column in ("title", "address"):
        assert fast[column].tolist() == plain[column].tolist()  # None stays None, "" stays ""
    assert [str(d)[:10] for d in fast["day"]] == [str(d)[:10] for d in plain["day"]]
    for column in ("lon", "lat", "merged_into_id"):
        a = fast[column].to_numpy(dtype=float)
        b = plain[column].to_numpy(dtype=float)
        assert np.array_equal(a, b, equal_nan=True)  # to the last bit
        assert np.array_equal(np.signbit(a), np.signbit(b))
    assert fast["id"].tolist() == plain["id"].tolist()


def test_no_rows_give_an_empty_frame_with_the_columns(odd):
    with odd.connect() as conn:
        fast, plain = _read(conn, [ODD.c.id < 0])
    assert fast.empty and list(fast.columns) == list(plain.columns)


def test_the_csv_reader_keeps_empty_text_apart_from_null():
    frame = csv_frame(b'"",\\N,1\n\\N,"a,b",2\n', ["title", "address", "count"])
    assert frame["title"].tolist() == ["", None]
    assert frame["address"].tolist() == [None, "a,b"]
    assert frame["count"].tolist() == [1, 2]
