"""The audit row's link as the store fills it in (PostgreSQL, decision 0057): Python renders the canonical
JSON around the three values only the chain's head knows, and pre + E + ',"id":' + I + ',"prev_hash":"'
+ P + '",' + post must be canonical() byte for byte, or every row the store chains breaks verify."""

from __future__ import annotations

import hashlib
from datetime import datetime

import pytest

from services import audit

P = "ab" * 32


def _row(**kw):
    row = audit.entry(
        actor_id=7,
        actor_role="leader",
        action="event.report",
        entity="events",
        entity_id=123,
        before=None,
        after={"title": '井盖 "缺失" \\ 路口\n😀', "n": [1, 2]},
        reason='理由：\t含引号"与反斜杠\\',
        at=datetime(2026, 11, 21, 8, 0, 1, 250000),
    )
    return row | kw


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"entity_id": None},
        {"actor_id": None, "actor_role": "system", "reason": None},
        {"before": '{"entity_id":0,"id":0,"prev_hash":"' + "0" * 64 + '",}', "entity_id": 10**15},
    ],
)
def test_the_parts_around_the_stores_values_rebuild_the_canonical_text(changes):
    row = _row(**changes)
    pre, post = audit.link_parts(row)
    for entry_id in (1, 99, 10**12):
        e = "null" if row["entity_id"] is None else str(row["entity_id"])
        spliced = pre + e + ',"id":' + str(entry_id) + ',"prev_hash":"' + P + '",' + post
        assert spliced == audit.canonical({**row, "id": entry_id}, P)
        # and so the hash the store takes of prev + text is chain_hash's
        assert hashlib.sha256((P + spliced).encode()).hexdigest() == audit.chain_hash(
            P, {**row, "id": entry_id}
        )


def test_the_values_sent_with_the_statement_hold_every_field_but_the_stores_own():
    values = audit.link_values(_row())
    assert {k[2:] for k in values} == (set(audit.FIELDS) - {"id", "entity_id"}) | {"pre", "post"}
