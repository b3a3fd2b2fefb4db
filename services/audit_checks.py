"""The nightly verification of the audit chain (审计链校验), kept for administrators to read.

:func:`check_audit_chain` (the jobs runner's ``audit_verify`` job) runs
:func:`services.audit.verify_chain` beside the store and records the result — rows checked, whether the
chain holds, the first broken row and what is wrong — in ``audit_checks``, with a trail row of its own
(so the trail says when it was last found whole). A chain found whole is then checked against the
checkpoints kept outside the store (decision 0006) and checkpointed again. :func:`latest_check` is what
``/admin`` shows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from db.models import AuditCheck
from db.uow import UnitOfWork
from services import audit

log = logging.getLogger("jobs.audit")


@dataclass(frozen=True)
class CheckResult:
    """One verification: when, how many rows were found sound, and the first broken row if any."""

    checked_at: datetime
    rows_checked: int
    ok: bool
    broken_id: int | None
    problem: str | None

    def line(self) -> str:
        """One sentence for an administrator (Chinese)."""
        when = f"{self.checked_at:%Y-%m-%d %H:%M}"
        if self.ok:
            return f"审计链校验（{when}）：完整，共 {self.rows_checked} 条记录"
        return f"审计链校验（{when}）：发现问题——{self.problem}（之前 {self.rows_checked} 条完好）"


#: A check that passed wrote a checkpoint outside the store; finding none later means the checkpoints were
#: lost or removed, and with them the proof that the chain's older rows are as they were.
LOST_ANCHORS = (
    "：审计锚点文件缺失或为空（{path}），但此前的校验已写入过锚点。请从备份恢复该文件；"
    "确认链无误后，可运行 python -m services.audit anchor 重新建立锚点"
)


def _anchored_before(conn: Connection) -> bool:
    """Whether an earlier check passed (and so wrote a checkpoint) on this store."""
    return conn.execute(select(AuditCheck.id).where(AuditCheck.ok).limit(1)).first() is not None


def check_audit_chain(uow: UnitOfWork, now: datetime) -> CheckResult:
    """Verify the chain as it stands and record the result; returns it."""
    anchors = audit.anchor_file(uow.store.url.render_as_string(hide_password=True))
    with uow.reader() as conn:
        count, broken = audit.verify_chain(conn)
        if broken is None:  # then every checkpoint outside the store, and a new one for tomorrow's check
            try:
                kept = audit.read_anchors(anchors)
                broken = audit.verify_anchors(conn, kept)
            except ValueError as exc:
                broken = audit.Broken(0, str(exc))
            else:
                if not kept and _anchored_before(conn):  # the folder lost or emptied: said, not restarted
                    broken = audit.Broken(0, LOST_ANCHORS.format(path=anchors))
            if broken is None:
                audit.write_anchor(conn, anchors, now)
    result = CheckResult(
        now,
        count,
        broken is None,
        None if broken is None else broken.id,
        None if broken is None else str(broken),
    )
    with uow.begin("audit.check"):
        check_id = uow.conn.execute(
            insert(AuditCheck).returning(AuditCheck.id),
            {
                "checked_at": now,
                "rows_checked": count,
                "ok": result.ok,
                "broken_id": result.broken_id,
                "problem": None if result.problem is None else result.problem[:500],
            },
        ).scalar_one()
        audit.record(
            uow.conn,
            **audit.who(None),
            action="audit.verify",
            entity="audit_checks",
            entity_id=check_id,
            before=None,
            after={"rows_checked": count, "ok": result.ok, "broken_id": result.broken_id},
            at=now,
        )
        uow.commit()
    if not result.ok:
        log.error("audit chain broken: %s", result.problem)
    return result


def latest_check(conn: Connection) -> CheckResult | None:
    """The most recent verification, or None if the chain was never checked by the runner."""
    row = conn.execute(
        select(AuditCheck).order_by(AuditCheck.checked_at.desc(), AuditCheck.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return CheckResult(row.checked_at, row.rows_checked, row.ok, row.broken_id, row.problem)
