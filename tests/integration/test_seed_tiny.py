"""Seeding the tiny demo into a real store: refusal, --force, determinism, counts, constraints, accounts."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, insert, select, text

from db.engine import make_engine, session_factory
from db.maintenance import count_rows
from db.models import Base, Department, Event, EventTransition, User
from demo.org import DEMO_PASSWORD
from demo.seed import DEMO_ACCOUNTS, SeedRefused, seed
from domain.event_flow import Action, replay
from tests.conftest import backend_url

END = datetime(2026, 11, 21, 18, 30)
BACKENDS = ["sqlite"] + (["postgresql"] if (backend_url() or "").startswith("postgresql") else [])
TABLES = [t.name for t in Base.metadata.sorted_tables]


def table_digest(conn) -> dict[str, str]:
    """A digest of each table's rows in primary-key order (values as text, so any backend compares)."""
    out = {}
    for tbl in Base.metadata.sorted_tables:
        order = ", ".join(c.name for c in tbl.primary_key.columns)
        h = hashlib.sha256()
        for row in conn.execute(text(f"SELECT * FROM {tbl.name} ORDER BY {order}")):
            h.update(repr(tuple(row)).encode())
        out[tbl.name] = h.hexdigest()
    return out


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request, new_store_url, tmp_path_factory):
    """A store seeded twice with tiny (the second time with --force): figures and digests of both."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('seed') / 'cockpit.db'}"
    else:
        url = new_store_url()
    engine = make_engine(url)
    manifests = tmp_path_factory.mktemp("manifest")
    first = seed(engine, "tiny", 1, END, manifest_dir=manifests)
    with engine.connect() as conn:
        before = table_digest(conn)
    with pytest.raises(SeedRefused, match="--force"):
        seed(engine, "tiny", 1, END, manifest_dir=manifests)
    second = seed(engine, "tiny", 1, END, force=True, manifest_dir=manifests)
    with engine.connect() as conn:
        after = table_digest(conn)
    yield engine, first, second, before, after, manifests
    engine.dispose()


def test_seeding_twice_gives_identical_tables(seeded):
    _, first, second, before, after, _ = seeded
    trail = {"audit_log", "audit_head"}  # append-only: it continues across reseeds (decision 0006)
    assert {k: v for k, v in before.items() if k not in trail} == {
        k: v for k, v in after.items() if k not in trail
    }
    assert before["audit_log"] != after["audit_log"]
    assert first["rows"] == second["rows"]
    assert first["manifest"] == second["manifest"]


def test_the_store_holds_the_rows_the_seed_reports(seeded):
    engine, first, *_ = seeded
    with engine.connect() as conn:
        counts = count_rows(conn, list(first["rows"]))
    assert counts == first["rows"]
    assert counts["admin_units"] > 6000  # the whole city's geography, whatever the scale
    assert 2_000 <= counts["events"] <= 4_000 and counts["venues"] >= 950


def test_foreign_keys_and_checks_hold(seeded):
    engine, *_ = seeded
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
        orphans = conn.execute(
            text(
                "SELECT COUNT(*) FROM event_transitions t LEFT JOIN events e ON e.id = t.event_id WHERE e.id IS NULL"
            )
        ).scalar_one()
        assert orphans == 0
        bad = conn.execute(
            text("SELECT COUNT(*) FROM hazards WHERE (status = 'rectified') <> (rectified_on IS NOT NULL)")
        ).scalar_one()
        assert bad == 0
    # The store refuses what the seed never writes: a CHECK and a foreign key, on this backend.
    with pytest.raises(Exception, match=r"(?i)check|constraint"), engine.begin() as conn:
        conn.execute(text("UPDATE events SET reporter_count = 0 WHERE id = 1"))
    with pytest.raises(Exception, match=r"(?i)foreign key"), engine.begin() as conn:
        conn.execute(text("UPDATE events SET grid_id = 999999999 WHERE id = 1"))


def test_rows_read_back_through_the_models_and_trails_replay(seeded):
    engine, *_ = seeded
    with session_factory(engine)() as s:
        events = s.scalars(select(Event).order_by(Event.id).limit(300)).all()
        assert isinstance(events[0].reported_at, datetime)
        for event in events:
            actions = s.scalars(
                select(EventTransition.action)
                .where(EventTransition.event_id == event.id)
                .order_by(EventTransition.seq)
            ).all()
            assert replay(Action(a) for a in actions) == event.status
        assert s.scalar(select(func.max(Event.updated_at))) <= END


def test_the_demo_accounts_exist_and_log_in_with_the_demo_password(seeded):
    engine, *_ = seeded
    with engine.connect() as conn:
        rows = conn.execute(
            select(User.username, User.password_hash, User.role).where(User.username.in_(DEMO_ACCOUNTS))
        )
        accounts = {u: (h, r) for u, h, r in rows}
    assert set(accounts) == set(DEMO_ACCOUNTS)
    hashes = {h for h, _ in accounts.values()}
    assert len(hashes) == 1  # one password, hashed once (argon2 is slow on purpose)
    assert PasswordHasher().verify(hashes.pop(), DEMO_PASSWORD)


def test_new_rows_get_fresh_ids_after_the_explicit_ones(seeded):
    engine, *_ = seeded
    with engine.begin() as conn:
        unit_id = conn.execute(select(func.min(Department.unit_id))).scalar_one()
        top = conn.execute(select(func.max(Department.id))).scalar_one()
        new_id = conn.execute(
            insert(Department).returning(Department.id),
            {"code": "TEST-1", "name": "测试部门", "kind": "测试", "unit_id": unit_id},
        ).scalar_one()
        assert new_id > top
        conn.execute(Department.__table__.delete().where(Department.id == new_id))


def test_the_manifest_is_written_next_to_the_data(seeded):
    _, first, _, _, _, manifests = seeded
    written = json.loads((manifests / "manifest_tiny_1.json").read_text(encoding="utf-8"))
    assert written == first["manifest"]
    kinds = {e["kind"] for e in written["anomalies"]}
    assert {"突发", "群发", "新苗头", "顽疾", "高发"} <= kinds
    mass = next(e for e in written["anomalies"] if e["kind"] == "群发")
    assert mass["event_id"] is not None
