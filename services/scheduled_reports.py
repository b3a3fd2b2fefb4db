"""Scheduled 日报/周报/月报 (定时报表): XLSX files the jobs runner writes to a reports folder, listed in the app.

Each night the runner writes, for the top unit and every county and township (the levels with
leaders), the same workbook the 报表 tab makes on demand (:func:`services.analytics.report_workbook`):
日报 the day before, 周报 the seven days up to Sunday (written on Monday), 月报 the calendar month
before (written on the 1st). The folder is ``REPORTS_DIR`` (default ``data/reports/``); one file per
report, ``<kind>_<first day>_<last day>_<unit code>.xlsx``, written to a temporary name and renamed,
so a reader never sees half a file and a rerun replaces the file whole. The folder is the list: what
an operator deletes is gone from the app too.

Reading is scoped like everything else: a user sees the reports of their scope unit and the units
under it (:func:`list_reports`); :func:`read_report` refuses (``OutOfScope``, logged) a file of any
other unit, and anything that is not a report file of the folder.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

from db.engine import ROOT
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.hierarchy import Tree, ancestor_table
from domain.schedule import previous_month
from domain.vocabulary import AdminLevel
from services import clock
from services.access import Scope, require_area
from services.analytics import report_workbook
from services.geography import tree as store_tree
from services.overview import unit_table

log = logging.getLogger("jobs.reports")
DEFAULT_DIR = ROOT / "data" / "reports"
#: Report kinds: the label the app shows (and :data:`services.analytics.REPORT_PERIODS` uses) → file prefix.
KINDS = {"日报": "daily", "周报": "weekly", "月报": "monthly"}
#: The levels that get a report of their own (the top unit is included whatever its level).
REPORT_LEVELS = (AdminLevel.CITY, AdminLevel.COUNTY, AdminLevel.TOWNSHIP)
NAME = re.compile(
    r"^(daily|weekly|monthly)_(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})_([A-Za-z0-9%._~-]+)\.xlsx$"
)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def reports_dir() -> Path:
    """The reports folder: ``REPORTS_DIR``, else ``data/reports/`` of the repository."""
    return Path(os.environ.get("REPORTS_DIR") or DEFAULT_DIR)


def period(kind: str, due: datetime) -> tuple[date, date]:
    """The first and last day a report of ``kind`` written at ``due`` covers (the days before ``due``)."""
    last = due.date() - timedelta(days=1)
    if kind == "日报":
        return last, last
    if kind == "周报":
        return last - timedelta(days=6), last
    if kind == "月报":
        return previous_month(due.date())
    raise ValueError(f"unknown report kind {kind!r}")


def file_name(kind: str, first: date, last: date, code: str) -> str:
    return f"{KINDS[kind]}_{first.isoformat()}_{last.isoformat()}_{quote(code, safe='')}.xlsx"


def report_units(tree: Tree) -> list[int]:
    """The units that get reports: the top units and every unit of :data:`REPORT_LEVELS` under them."""
    out = list(tree.roots)
    for level in REPORT_LEVELS:
        out += [u for u in tree.descendants(None, level) if u not in out]
    return out


def write_reports(uow: UnitOfWork, kind: str, due: datetime, folder: Path | None = None) -> list[Path]:
    """Write the ``kind`` report due at ``due`` for every unit of :func:`report_units`; returns the files.

    Files only, no row changes: the jobs runner's record of the run says what was written.
    """
    folder = folder or reports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    first, last = period(kind, due)
    written = []
    with uow.reader() as conn:
        tree = store_tree(conn)
        units = unit_table(conn).set_index("id")
        anc = ancestor_table(units.reset_index()[["id", "parent_id", "level"]])
        for uid in report_units(tree):
            data = report_workbook(
                conn,
                Scope(tuple(tree.grids_under(uid))),
                kind=kind,
                day=last,
                units=units,
                anc=anc,
                scope_unit_id=uid,
                first_day=first,
            )
            target = folder / file_name(kind, first, last, tree.code(uid))
            temporary = folder / f".{target.name}.{os.getpid()}.tmp"
            try:
                temporary.write_bytes(data)
                os.replace(temporary, target)
            except OSError:  # a full disk: no half-written hidden file left behind for every failed try
                temporary.unlink(missing_ok=True)
                raise
            written.append(target)
    log.info("%s %s–%s: %s files in %s", kind, first, last, len(written), folder)
    return written


@dataclass(frozen=True)
class ReportFile:
    """One scheduled report in the folder."""

    name: str  # the file's name in the folder
    kind: str  # 日报 / 周报 / 月报
    first: date
    last: date
    unit_id: int
    unit_name: str
    created: datetime  # China time
    size_bytes: int

    @property
    def period_label(self) -> str:
        return self.first.isoformat() if self.first == self.last else f"{self.first} 至 {self.last}"

    @property
    def download_name(self) -> str:
        return f"{self.unit_name}{self.kind}_{self.period_label.replace(' 至 ', '至')}.xlsx"


_LABEL = {v: k for k, v in KINDS.items()}


def _parse(path: Path, tree: Tree) -> ReportFile | None:
    m = NAME.match(path.name)
    if m is None:
        return None
    uid = tree.by_code(unquote(m.group(4)))
    if uid is None:  # a unit no longer in the store (boundaries replaced)
        return None
    stat = path.stat()
    created = datetime.fromtimestamp(stat.st_mtime, clock.ZONE).replace(tzinfo=None, microsecond=0)
    return ReportFile(
        path.name,
        _LABEL[m.group(1)],
        date.fromisoformat(m.group(2)),
        date.fromisoformat(m.group(3)),
        uid,
        tree.name(uid),
        created,
        stat.st_size,
    )


def list_reports(tree: Tree, unit_id: int, folder: Path | None = None, limit: int = 200) -> list[ReportFile]:
    """The reports of ``unit_id`` and the units under it, newest period first (then by unit, kind)."""
    folder = folder or reports_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        report = _parse(path, tree) if path.is_file() else None
        if report is not None and tree.contains(unit_id, report.unit_id):
            found.append(report)
    found.sort(key=lambda r: (-r.last.toordinal(), len(tree.path(r.unit_id)), r.unit_name, r.kind))
    return found[:limit]


def read_report(tree: Tree, user: CurrentUser, name: str, folder: Path | None = None) -> bytes:
    """The bytes of report file ``name`` for ``user``: ``OutOfScope`` (logged) for another unit's report,
    ``LookupError`` for a name that is not a report file of the folder (gone, or never one)."""
    folder = folder or reports_dir()
    path = folder / name
    report = _parse(path, tree) if NAME.match(name) and path.is_file() else None
    if report is None:
        raise LookupError("报表不存在或已被删除")
    require_area(tree, user, report.unit_id, "scheduled_report")
    return path.read_bytes()
