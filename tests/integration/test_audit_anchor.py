"""Checkpoints outside the database: a truncated tail with the head rewound, or a chain recomputed from an
earlier row, both pass the chain's own check and are found by the anchors."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db.models import AuditHead, AuditLog
from db.uow import UnitOfWork
from services import audit, settings
from tests.integration.test_audit import ROOT

NOW = datetime(2026, 11, 21, 9, 0)


def _tamper(engine, sql: str, params: dict) -> None:
    """Change the trail past its guard, as someone with direct access to the database would."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # the superuser switches the guard trigger off
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            conn.execute(text(sql), params)
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
        else:  # someone with the file drops the trigger
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
            conn.execute(text(sql), params)


def _write_settings(engine, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        uow = UnitOfWork(engine)
        with uow.begin("tests.setting"):
            settings.write(uow.conn, "tests.k", str(i), NOW)
            uow.commit()


def _verify_cli(engine, anchors) -> subprocess.CompletedProcess:
    url = engine.url.render_as_string(hide_password=False)
    return subprocess.run(
        [sys.executable, "-m", "services.audit", "verify", "--url", url, "--anchors", str(anchors)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _recompute_from(engine, first: int) -> None:
    """Rewrite every row from ``first`` on with a new reason and a recomputed chain and head."""
    with Session(engine) as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.id >= first).order_by(AuditLog.id)).all()
        prev = s.scalar(select(AuditLog.hash).where(AuditLog.id == first - 1)) or audit.GENESIS
        forged = []
        for row in rows:
            fields = {f: getattr(row, f) for f in audit.FIELDS} | {"reason": "改写"}
            digest = audit.chain_hash(prev, fields)
            forged.append((row.id, prev, digest))
            prev = digest
    for rid, prev_hash, digest in forged:
        _tamper(engine, "UPDATE audit_log SET reason = '改写', prev_hash = :p, hash = :h WHERE id = :i",
                {"p": prev_hash, "h": digest, "i": rid})  # fmt: skip
    with engine.begin() as conn:
        conn.execute(AuditHead.__table__.update().values(hash=prev))


def test_a_truncated_tail_with_the_head_rewound_is_found_by_the_anchor(empty_engine, tmp_path):
    engine = empty_engine
    anchors = tmp_path / "anchors.jsonl"
    _write_settings(engine, 6)
    with engine.connect() as conn:
        made = audit.write_anchor(conn, anchors, NOW)
    assert made is not None and made.last_id == 6
    _tamper(engine, "DELETE FROM audit_log WHERE id > 4", {})
    with engine.begin() as conn:  # the head rewound to the new last row: the chain alone looks whole
        last = conn.execute(select(AuditLog.hash).where(AuditLog.id == 4)).scalar_one()
        conn.execute(AuditHead.__table__.update().values(last_id=4, hash=last))
    with engine.connect() as conn:
        assert audit.verify(conn) is None
        broken = audit.verify_anchors(conn, audit.read_anchors(anchors))
    assert broken is not None and broken.id == 6 and "已不存在" in broken.problem
    run = _verify_cli(engine, anchors)
    assert run.returncode == 1 and "第 6 条" in run.stdout


def test_a_chain_recomputed_from_an_earlier_row_is_found_by_the_anchor(empty_engine, tmp_path):
    engine = empty_engine
    anchors = tmp_path / "anchors.jsonl"
    _write_settings(engine, 5)
    with engine.connect() as conn:
        audit.write_anchor(conn, anchors, NOW)
    _write_settings(engine, 3, start=5)
    _recompute_from(engine, 2)
    with engine.connect() as conn:
        assert audit.verify(conn) is None  # every link and hash holds: only the anchor can tell
        broken = audit.verify_anchors(conn, audit.read_anchors(anchors))
    assert broken is not None and broken.id == 5 and "重算" in broken.problem
    assert _verify_cli(engine, anchors).returncode == 1


def test_an_untouched_chain_matches_every_anchor_and_the_command_says_so(empty_engine, tmp_path):
    engine = empty_engine
    anchors = tmp_path / "anchors.jsonl"
    for n in (2, 3):
        _write_settings(engine, n)
        with engine.connect() as conn:
            audit.write_anchor(conn, anchors, NOW)
    assert len(audit.read_anchors(anchors)) == 2
    run = _verify_cli(engine, anchors)
    assert run.returncode == 0 and "审计链完整" in run.stdout


def test_a_damaged_anchor_file_is_reported_by_line(empty_engine, tmp_path):
    engine = empty_engine
    anchors = tmp_path / "anchors.jsonl"
    _write_settings(engine, 1)
    with engine.connect() as conn:
        audit.write_anchor(conn, anchors, NOW)
    with open(anchors, "a", encoding="utf-8") as f:
        f.write("not json\n")
    run = _verify_cli(engine, anchors)
    assert run.returncode == 1 and "第 2 行" in run.stdout


def test_the_anchor_command_appends_the_head(empty_engine, tmp_path):
    engine = empty_engine
    anchors = tmp_path / "anchors.jsonl"
    _write_settings(engine, 2)
    url = engine.url.render_as_string(hide_password=False)
    run = subprocess.run(
        [sys.executable, "-m", "services.audit", "anchor", "--url", url, "--anchors", str(anchors)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    with engine.connect() as conn:
        head = conn.execute(text("SELECT last_id, hash FROM audit_head")).one()
    assert [(a.last_id, a.hash) for a in audit.read_anchors(anchors)] == [(head.last_id, head.hash)]


def test_the_nightly_check_checkpoints_a_whole_chain_and_finds_a_truncation_the_next_night(empty_engine):
    from services.audit_checks import check_audit_chain

    engine = empty_engine
    _write_settings(engine, 4)
    first = check_audit_chain(UnitOfWork(engine), NOW)
    assert first.ok
    url = engine.url.render_as_string(hide_password=True)
    assert audit.read_anchors(audit.anchor_file(url))[-1].last_id >= 4
    anchored = audit.read_anchors(audit.anchor_file(url))[-1].last_id
    _tamper(engine, "DELETE FROM audit_log WHERE id > 2", {})
    with engine.begin() as conn:
        last = conn.execute(select(AuditLog.hash).where(AuditLog.id == 2)).scalar_one()
        conn.execute(AuditHead.__table__.update().values(last_id=2, hash=last))
    second = check_audit_chain(UnitOfWork(engine), NOW)
    assert not second.ok and second.broken_id == anchored


def test_a_lost_checkpoint_file_is_said_by_the_next_check_and_an_anchor_made_anew_settles_it(empty_engine):
    """Deleting the folder of checkpoints (with the rows they prove) must not pass as a store's first check."""
    from services.audit_checks import check_audit_chain

    engine = empty_engine
    _write_settings(engine, 3)
    assert check_audit_chain(UnitOfWork(engine), NOW).ok
    path = audit.anchor_file(engine.url.render_as_string(hide_password=True))
    path.unlink()
    lost = check_audit_chain(UnitOfWork(engine), NOW)
    assert (
        not lost.ok and "审计锚点文件缺失或为空" in (lost.problem or "") and str(path) in (lost.problem or "")
    )
    assert not path.exists()  # nothing written over the loss
    with engine.connect() as conn:
        audit.write_anchor(conn, path, NOW)  # python -m services.audit anchor, once the chain is confirmed
    assert check_audit_chain(UnitOfWork(engine), NOW).ok
