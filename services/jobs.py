"""The jobs runner (定时任务): what the cockpit does by itself when something falls due, beside the app.

The jobs are data (:data:`JOBS`): a name, a Chinese label, a schedule (:mod:`domain.schedule`: every N
minutes, or daily / weekly / monthly at a China time) and a function. In order:

| job | schedule | what |
|---|---|---|
| ``escalate`` | every minute | 自动上移 of overdue events (:func:`services.events.escalate_overdue`) |
| ``overdue`` | every minute | 超期 marked on open events past their deadline (:func:`services.events.mark_overdue`) |
| ``rollups`` | every minute | the event rollups brought up to the latest transition (:mod:`services.rollups`) |
| ``remind`` | every 5 minutes | 督办提醒 for deadlines near or past (:mod:`services.reminders`) |
| ``warnings`` | daily 00:30 | the day before judged for 预警, alerts stored (:mod:`services.daily_warnings`) |
| ``warnings_today`` | every 10 minutes | today judged for 预警 so far, kept for a report ending today (decision 0039) |
| ``report_daily`` / ``report_weekly`` / ``report_monthly`` | daily 01:00 / Monday 01:30 / the 1st 02:00 | XLSX 日报/周报/月报 (:mod:`services.scheduled_reports`) |
| ``audit_verify`` | daily 03:00 | the audit chain verified, result kept (:mod:`services.audit_checks`) |
| ``prune_runs`` | daily 04:00 | run records older than :data:`KEEP_RUNS_DAYS` deleted |
| ``rollups_tidy`` | daily 04:30 | PostgreSQL: 预警's recent reports rewritten in key order, the rollups vacuumed and analyzed (:func:`services.rollups.tidy`, decision 0044; SQLite: nothing to do) |
| ``forecast_train`` | Sunday 02:30 | the hazard forecast retrained, stored as a new version, every venue scored (:mod:`services.forecast`) |

:func:`run_due` takes ``now`` (tests move it) and, for each job, the latest due moment at or before it
(``schedule.last_due(now)``). A job runs when that moment has no run yet: a runner that was down over
several due moments runs the job once, for the latest (catch-up once, not once per missed period).

**Runs are recorded, and claimed.** Before the work a runner inserts the row (job, due moment) of
``job_runs`` — unique — in its own short transaction; a runner that finds the row there skips the item,
so two runners (two hosts, a runner and the simulator, two threads) never do the same item twice. The
row then says how it ended: ok with a count and a summary, or failed with the error. A failed run is
taken again by a later pass after :data:`RETRY_AFTER` (at most :data:`MAX_ATTEMPTS` in all), and a run
left "running" by a runner that died is taken again after :data:`STALE_AFTER`. One job failing does
not stop the others. The claim and its outcome are the runner's own record, written outside a unit of
work and without a trail row; every change a job makes to the store goes through a unit of work with
its own trail row (decision 0015).

``python -m services.jobs --every 60`` runs a pass a minute until stopped (``make jobs``; ``make run``
starts it beside the app); ``--once`` runs one pass and exits (cron, a systemd timer); ``--now`` runs a
pass as if at that moment, ``--only`` runs some jobs, ``--status`` prints each job's last run. The demo
simulator calls :func:`run_due` for the 上移 in its own tick, like any other scheduler.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from db.models import JobRun
from db.uow import WRITE_TRANSACTION, UnitOfWork
from domain.access import redact
from domain.schedule import Daily, Every, Monthly, Schedule, Weekly
from services import clock, forecast, rollups
from services.audit_checks import check_audit_chain
from services.daily_warnings import judged_day, store_daily_alerts, store_intraday_alerts
from services.events import escalate_overdue, mark_overdue
from services.leader import Lease
from services.reminders import raise_reminders
from services.scheduled_reports import reports_dir, write_reports

log = logging.getLogger("jobs")
#: Events escalated (and reminders raised) per pass at most; the rest wait for the next due moment.
BATCH = 200
#: A failed run is taken again after this long, by a later pass …
RETRY_AFTER = timedelta(minutes=10)
#: … at most this many attempts in all.
MAX_ATTEMPTS = 3
#: A run still "running" after this long was left by a runner that died: another runner takes it.
STALE_AFTER = timedelta(hours=2)
#: Run records are kept this many days (``prune_runs``).
KEEP_RUNS_DAYS = 90
OK, FAILED, RUNNING = "ok", "failed", "running"
#: How often the end of a run is written before it is left "running" (a store busy 10 s at that moment
#: had the whole 日报 redone two hours later), with pauses of 1, 2, 3 … seconds between.
FINISH_TRIES, FINISH_PAUSE_S = 5, 1.0


@dataclass(frozen=True)
class Context:
    """What a job gets: the store, the due moment it runs for, the runner's ``now`` and its settings."""

    uow: UnitOfWork
    due: datetime
    now: datetime
    reports_dir: Path
    limit: int = BATCH


@dataclass(frozen=True)
class Done:
    """What a job did: how many items, and a sentence (Chinese) for the run record."""

    count: int
    summary: str


@dataclass(frozen=True)
class Job:
    name: str
    label: str
    schedule: Schedule
    work: Callable[[Context], Done]


@dataclass(frozen=True)
class Run:
    """One run this runner did (or tried): the job, its due moment, how it ended."""

    job: str
    due_at: datetime
    outcome: str
    count: int | None = None
    summary: str | None = None
    error: str | None = None


# -- the jobs ---------------------------------------------------------------------------------


def _escalate(ctx: Context) -> Done:
    n = escalate_overdue(ctx.uow, ctx.now, limit=ctx.limit)
    return Done(n, f"自动上移 {n} 件")


def _mark_overdue(ctx: Context) -> Done:
    n = mark_overdue(ctx.uow, ctx.now, limit=ctx.limit)
    return Done(n, f"标记超期 {n} 件")


def _rollups(ctx: Context) -> Done:
    n = rollups.refresh(ctx.uow, ctx.now)
    return Done(n, f"汇总表更新 {n} 个（日期、网格）")


def _rollups_tidy(ctx: Context) -> Done:
    done = rollups.tidy(ctx.uow.store)
    return Done(len(done), "；".join(done) or "无需整理（SQLite 表本身按键有序）")


def _remind(ctx: Context) -> Done:
    n = raise_reminders(ctx.uow, ctx.now, limit=ctx.limit)
    return Done(n, f"新增督办提醒 {n} 条")


def _warnings(ctx: Context) -> Done:
    day = judged_day(ctx.due)
    n = store_daily_alerts(ctx.uow, day, ctx.now)
    return Done(n, f"{day} 预警研判：{n} 条")


def _warnings_today(ctx: Context) -> Done:
    n = store_intraday_alerts(ctx.uow, ctx.now)
    if n is None:
        return Done(0, f"{ctx.now.date()} 预警研判：无新变化或当日已研判，未重新研判")
    return Done(n, f"{ctx.now.date()} 当日预警研判（截至 {ctx.now:%H:%M}）：{n} 条")


def _report(kind: str) -> Callable[[Context], Done]:
    def work(ctx: Context) -> Done:
        files = write_reports(ctx.uow, kind, ctx.due, ctx.reports_dir)
        return Done(len(files), f"{kind} {len(files)} 份 → {ctx.reports_dir}")

    return work


def _audit_verify(ctx: Context) -> Done:
    result = check_audit_chain(ctx.uow, ctx.now)
    return Done(result.rows_checked, result.line())


def _prune_runs(ctx: Context) -> Done:
    with _bookkeeping(ctx.uow) as conn:
        n = conn.execute(
            delete(JobRun).where(JobRun.due_at < ctx.now - timedelta(days=KEEP_RUNS_DAYS))
        ).rowcount
    return Done(n, f"删除 {KEEP_RUNS_DAYS} 天前的运行记录 {n} 条")


def _forecast_train(ctx: Context) -> Done:
    try:
        result = forecast.train(ctx.uow, ctx.now)
    except forecast.NotEnoughHistory as exc:  # a young store: nothing to learn from yet, not a failure
        return Done(0, str(exc))
    return Done(
        result.rows, f"隐患预测模型 v{result.version}：AUC {result.metrics['auc']}，训练 {result.seconds} 秒"
    )


JOBS: tuple[Job, ...] = (
    Job("escalate", "超期事件自动上移", Every(1), _escalate),
    Job("overdue", "超期事件标记", Every(1), _mark_overdue),
    Job("rollups", "事件汇总表更新", Every(1), _rollups),
    Job("remind", "督办提醒", Every(5), _remind),
    Job("warnings", "每日预警研判", Daily(clock_time(0, 30)), _warnings),
    Job("warnings_today", "当日预警研判", Every(10), _warnings_today),
    Job("report_daily", "日报", Daily(clock_time(1, 0)), _report("日报")),
    Job("report_weekly", "周报", Weekly(0, clock_time(1, 30)), _report("周报")),
    Job("report_monthly", "月报", Monthly(1, clock_time(2, 0)), _report("月报")),
    Job("audit_verify", "审计链校验", Daily(clock_time(3, 0)), _audit_verify),
    Job("prune_runs", "清理运行记录", Daily(clock_time(4, 0)), _prune_runs),
    Job("rollups_tidy", "汇总表整理", Daily(clock_time(4, 30)), _rollups_tidy),
    Job("forecast_train", "隐患预测模型训练", Weekly(6, clock_time(2, 30)), _forecast_train),
)


# -- the runner's own record ------------------------------------------------------------------


def _runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


@contextmanager
def _bookkeeping(uow: UnitOfWork) -> Iterator[Connection]:
    """A short transaction of its own for ``job_runs`` (beside any unit of work; SQLite: BEGIN IMMEDIATE,
    so it queues as a writer). Inside a caller's transaction (tests/rollback.py): a savepoint of it."""
    target = uow.engine
    if isinstance(target, Connection):
        with target.begin_nested():
            yield target
        return
    with target.connect() as conn:
        conn.execution_options(**{WRITE_TRANSACTION: True})
        with conn.begin():
            yield conn


def claim(
    uow: UnitOfWork, job: str, due: datetime, now: datetime, started: datetime | None = None
) -> int | None:
    """The id of the run of (``job``, ``due``) this runner now holds, or None when another runner has it
    (or had it and it ended well, or failed too often, or is still running). ``started``: the moment to
    record (``now`` plus the time the pass has taken so far; default ``now``)."""
    started = started or now
    dialect = postgresql if uow.store.dialect.name == "postgresql" else sqlite
    with _bookkeeping(uow) as conn:
        new = conn.execute(
            dialect.insert(JobRun)
            .values(job=job, due_at=due, started_at=started, outcome=RUNNING, attempts=1, runner=_runner())
            .on_conflict_do_nothing(index_elements=["job", "due_at"])
            .returning(JobRun.id)
        ).scalar()
        if new is not None:
            return int(new)
        # Taken before: again only if it failed a while ago, or its runner died (compare-and-set).
        again = conn.execute(
            update(JobRun)
            .where(
                JobRun.job == job,
                JobRun.due_at == due,
                or_(
                    and_(
                        JobRun.outcome == FAILED,
                        JobRun.attempts < MAX_ATTEMPTS,
                        JobRun.finished_at <= now - RETRY_AFTER,
                    ),
                    and_(  # its runner died; a job that kills its runner is not retaken for ever
                        JobRun.outcome == RUNNING,
                        JobRun.attempts < MAX_ATTEMPTS,
                        JobRun.started_at <= now - STALE_AFTER,
                    ),
                ),
            )
            .values(
                outcome=RUNNING,
                attempts=JobRun.attempts + 1,
                started_at=started,
                finished_at=None,
                runner=_runner(),
            )
            .returning(JobRun.id)
        ).scalar()
        return None if again is None else int(again)


def _finish(uow: UnitOfWork, run_id: int, run: Run, finished: datetime) -> None:
    with _bookkeeping(uow) as conn:
        conn.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(
                outcome=run.outcome,
                finished_at=finished,
                count=run.count,
                summary=None if run.summary is None else run.summary[:500],
                error=run.error,
            )
        )


def _error_text(exc: BaseException) -> str:
    """The error for the run record: the exception and where it came from, phone numbers masked."""
    lines = traceback.format_exception(exc)
    return redact("".join(lines[-6:]))[-4000:]


# -- the runner -------------------------------------------------------------------------------


def run_due(
    uow: UnitOfWork,
    now: datetime,
    *,
    only: Collection[str] | None = None,
    jobs: tuple[Job, ...] = JOBS,
    limit: int = BATCH,
    reports: Path | None = None,
    leading: Callable[[], bool] | None = None,
    stopping: Callable[[], bool] | None = None,
) -> dict[str, Run]:
    """Run every job (of ``only``, if given) due at ``now`` that no runner has done yet; returns the runs
    this runner did, by job name (a job another runner holds, or one not due, is not in it).

    ``leading`` (the runner's lease, :meth:`services.leader.Lease.held`) is asked before each job: a
    runner that lost its lease mid-pass stops there, and the jobs it had not claimed are the new leader's.
    ``stopping`` (the runner was told to stop: SIGTERM, Ctrl-C) is asked there too: the job under way
    finishes, the rest are left for the next runner's pass (a first pass on a new store can take
    minutes, and a stop signal waited for all of it)."""
    if only is not None:
        unknown = set(only) - {j.name for j in jobs}
        if unknown:
            raise ValueError(f"unknown jobs: {', '.join(sorted(unknown))}")
    folder = reports or reports_dir()
    done: dict[str, Run] = {}
    t0 = time.monotonic()

    def elapsed() -> datetime:  # ``now`` moved on by the time the pass has taken (the clock is injected)
        return now + timedelta(seconds=round(time.monotonic() - t0, 3))

    for job in jobs:
        if only is not None and job.name not in only:
            continue
        if stopping is not None and stopping():
            log.info("stopping: the pass ends before %s; the next pass does the rest", job.name)
            break
        if leading is not None and not leading():
            log.warning("lease lost: the pass stops before %s; the leading runner does the rest", job.name)
            break
        due = job.schedule.last_due(now)
        try:
            run_id = claim(uow, job.name, due, now, elapsed())
        except Exception as exc:  # the store is busy or gone: the next pass tries again
            log.exception("%s: could not claim the run due %s", job.name, due)
            # said as a failure of this pass (``--once`` exits 1: cron or a timer sees it), not recorded
            done[job.name] = Run(job.name, due, FAILED, error=_error_text(exc), summary="无法登记运行")
            continue
        if run_id is None:
            continue
        try:
            result = job.work(Context(uow, due, now, folder, limit))
            run = Run(job.name, due, OK, result.count, result.summary)
        except Exception as exc:  # recorded; the other jobs still run
            log.exception("%s (due %s) failed", job.name, due)
            run = Run(job.name, due, FAILED, error=_error_text(exc), summary=f"{job.label}失败")
        for attempt in range(FINISH_TRIES):  # a store busy for a moment must not have the work redone
            try:
                _finish(uow, run_id, run, elapsed())
                break
            except Exception:  # after the last try left "running": taken again after STALE_AFTER
                log.exception(
                    "%s: could not record the end of run %s (try %d)", job.name, run_id, attempt + 1
                )
                if attempt + 1 == FINISH_TRIES:
                    run = replace(run, outcome=RUNNING)
                else:
                    time.sleep(FINISH_PAUSE_S * (attempt + 1))
        done[job.name] = run
    return done


#: The runner is taken as stopped when no run of any job has ended for this long (上移 runs every minute).
STOPPED_AFTER = timedelta(minutes=15)
#: What a failed run's error says, in words a person can act on (the first that matches; checked in order).
_CAUSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("No space left", "Disk quota"), "磁盘已满：请清理报表目录（REPORTS_DIR）或数据库所在的磁盘"),
    (
        ("Read-only file system", "Permission denied"),
        "目录不可写：请检查报表目录（REPORTS_DIR）和审计校验点目录的写权限",
    ),
    (("database is locked", "busy", "lock timeout", "statement timeout"), "数据库繁忙"),
    (
        ("could not connect", "connection", "server closed", "terminating", "unable to open database"),
        "数据库连接中断或数据库文件不可用",
    ),
)


def _cause(error: str | None) -> str:
    text = (error or "").lower()
    for needles, words in _CAUSES:
        if any(n.lower() in text for n in needles):
            return words
    return "程序错误：请把 python -m services.jobs --status 的输出告知维护人员"


def attention(conn: Connection, now: datetime, jobs: tuple[Job, ...] = JOBS) -> list[str]:
    """What an administrator must know about the timed work, in Chinese, each line saying what to do: the
    runner stopped (or never started), a job whose last run failed (and whether it will be tried
    again), a run left unfinished by a runner that died. Empty when all is well."""
    runs = last_runs(conn, jobs)
    ended = [r["finished_at"] for r in runs if r.get("finished_at") is not None]
    lines: list[str] = []
    if not ended:
        lines.append(
            "定时任务从未运行：超期自动上移、督办提醒、每日预警和定时报表都不会进行。"
            "请在服务器上启动定时任务（make jobs，或 python -m services.jobs）。"
        )
    elif now - max(ended) > STOPPED_AFTER:
        minutes = int((now - max(ended)).total_seconds() // 60)
        lines.append(
            f"定时任务已 {minutes} 分钟未运行（最近一次结束于 {max(ended):%Y-%m-%d %H:%M}）：超期自动上移、"
            "督办提醒、预警和报表已停止。请在服务器上检查并重新启动定时任务（make jobs）。"
        )
    for r in runs:
        outcome, due = r.get("outcome"), r.get("due_at")
        if due is None:
            continue
        if outcome == FAILED:
            more = (
                "，已停止重试；处理后在服务器上运行 "
                f"python -m services.jobs --once --retry --only {r['job']} 补做"
                if (r.get("attempts") or 0) >= MAX_ATTEMPTS
                else f"，{int(RETRY_AFTER.total_seconds() // 60)} 分钟后自动重试"
            )
            lines.append(
                f"{r['label']}（应于 {due:%Y-%m-%d %H:%M} 运行）失败 {r.get('attempts') or 1} 次"
                f"{more}。原因：{_cause(r.get('error'))}。"
            )
        elif outcome == RUNNING and r.get("started_at") and now - r["started_at"] > STALE_AFTER:
            again = (
                f"已中断 {MAX_ATTEMPTS} 次，不再自动重做（可能是它使定时任务进程退出，如内存不足）；处理后在服务器上运行 "
                f"python -m services.jobs --once --retry --only {r['job']}"
                if (r.get("attempts") or 0) >= MAX_ATTEMPTS
                else "下次运行时自动重做"
            )
            lines.append(
                f"{r['label']}（应于 {due:%Y-%m-%d %H:%M} 运行）于 {r['started_at']:%Y-%m-%d %H:%M} 开始后中断"
                f"（运行它的进程已退出），{again}。"
            )
    return lines


def allow_retry(uow: UnitOfWork, jobs: Collection[str], now: datetime) -> int:
    """Let the failed runs of ``jobs`` that stopped retrying be tried once more, at once (after their
    cause was dealt with). Returns how many runs were reopened."""
    with _bookkeeping(uow) as conn:
        return int(
            conn.execute(
                update(JobRun)
                .where(
                    JobRun.job.in_(list(jobs)),
                    or_(
                        JobRun.outcome == FAILED,
                        and_(JobRun.outcome == RUNNING, JobRun.attempts >= MAX_ATTEMPTS),
                    ),
                )
                .values(attempts=MAX_ATTEMPTS - 1, finished_at=now - RETRY_AFTER)
            ).rowcount
            or 0
        )


def last_runs(conn: Connection, jobs: tuple[Job, ...] = JOBS) -> list[dict]:
    """Each job's latest run (job, label, schedule, due_at, started_at, finished_at, outcome, attempts,
    count, summary, error), in registry order; a job never run has only its name, label and schedule."""
    latest = select(JobRun.job, func.max(JobRun.due_at).label("due_at")).group_by(JobRun.job).subquery()
    rows = {
        r.job: r
        for r in conn.execute(
            select(JobRun).join(latest, and_(JobRun.job == latest.c.job, JobRun.due_at == latest.c.due_at))
        ).all()
    }
    out = []
    for j in jobs:
        base = {"job": j.name, "label": j.label, "schedule": j.schedule.label}
        r = rows.get(j.name)
        if r is not None:
            base |= {
                c: getattr(r, c)
                for c in (
                    "due_at",
                    "started_at",
                    "finished_at",
                    "outcome",
                    "attempts",
                    "count",
                    "summary",
                    "error",
                )
            }
        out.append(base)
    return out


#: How far this machine's clock may be from the store's before the runner stops (PostgreSQL): a runner
#: ahead closed a day early (its 日报 and 预警 written on part of the day, then taken as done by every
#: other runner) and moved events up before their deadline.
MAX_CLOCK_SKEW = timedelta(minutes=2)


def clock_skew(engine: Engine | Connection) -> timedelta | None:
    """This machine's clock minus the store's (PostgreSQL's ``now()``), or None on SQLite (a file store
    shares the machine, and its clock)."""
    if engine.dialect.name != "postgresql":
        return None
    reader = engine.connect() if isinstance(engine, Engine) else nullcontext(engine)
    with reader as conn:
        store_now = conn.execute(select(func.now())).scalar_one()
    return clock.now() - store_now.astimezone(clock.ZONE).replace(tzinfo=None)


def skew_problem(engine: Engine | Connection) -> str | None:
    """Why this runner must not run now (its clock too far from the store's), in Chinese; else None."""
    skew = clock_skew(engine)
    if skew is None or abs(skew) <= MAX_CLOCK_SKEW:
        return None
    way = "快" if skew > timedelta(0) else "慢"
    return (
        f"本机时钟比数据库{way} {abs(skew).total_seconds():.0f} 秒：定时任务暂停，以免提前结束一天的日报和预警"
        "或提前上移事件。请校准本机时间（NTP）后重新启动定时任务。"
    )


def run_forever(engine: Engine, every: float, reports: Path | None = None) -> None:
    """A pass every ``every`` seconds until SIGTERM/SIGINT; a failed pass is logged and the next one runs."""
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    uow = UnitOfWork(engine)
    log.info(
        "started: a pass every %.0f s; jobs: %s",
        every,
        ", ".join(f"{j.name} ({j.schedule.label})" for j in JOBS),
    )
    lease, leading = Lease(engine, "jobs"), None
    while running:
        try:
            now_leading = lease.acquire()
            if now_leading != leading:  # one line per change: "leading", or "standby" behind another runner
                log.info(
                    "leading: this runner runs the passes" if now_leading else "standby: another runner leads"
                )
                leading = now_leading
            if leading and (problem := skew_problem(engine)) is not None:
                log.error("%s", problem)  # nothing runs; /admin says 定时任务已 N 分钟未运行 after a while
                leading = None
                lease.release()
            passed = (
                run_due(uow, clock.now(), reports=reports, leading=lease.held, stopping=lambda: not running)
                if leading
                else {}
            )
            for run in passed.values():
                if run.outcome != OK or run.count:
                    log.info("%s %s: %s", run.job, run.outcome, run.summary)
        except Exception:  # keep running across a transient lock or a bad row: the next pass retries
            log.exception("pass failed")
        deadline = time.monotonic() + every
        while running and time.monotonic() < deadline:
            time.sleep(min(1.0, every))
    lease.release()


def _moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None, microsecond=0)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"时间格式应为 2026-11-21T02:00（中国时间）：{text}") from exc


def main(argv: list[str] | None = None) -> int:
    from db.engine import make_engine
    from services.personal_data import redact_logs

    names = [j.name for j in JOBS]
    parser = argparse.ArgumentParser(
        description="定时任务：超期上移、督办提醒、每日预警、定时报表、审计链校验 (the jobs runner)"
    )
    parser.add_argument("--every", type=float, default=60.0, help="seconds between passes")
    parser.add_argument("--once", action="store_true", help="run one pass and exit")
    parser.add_argument(
        "--now", type=_moment, default=None, help="run as if at this China time (with --once)"
    )
    parser.add_argument("--only", nargs="+", choices=names, default=None, metavar="JOB", help=f"of {names}")
    parser.add_argument(
        "--reports-dir", type=Path, default=None, help="reports folder (default REPORTS_DIR or data/reports)"
    )
    parser.add_argument("--status", action="store_true", help="print each job's last run and exit")
    parser.add_argument(
        "--retry",
        action="store_true",
        help="with --once --only JOB: try the job's failed runs once more (after the cause was dealt with)",
    )
    args = parser.parse_args(argv)
    redact_logs()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s jobs %(message)s")
    engine = make_engine()
    if args.status:
        with engine.connect() as conn:
            for r in last_runs(conn):
                when = f"{r['due_at']:%Y-%m-%d %H:%M}" if r.get("due_at") else "从未运行"
                print(
                    f"{r['job']:<15} {r['schedule']:<14} {when}  {r.get('outcome') or ''}  {r.get('summary') or ''}"
                )
            for line in attention(conn, clock.now()):
                print(f"注意：{line}")
        return 0
    if args.retry:
        if not args.only:
            parser.error("--retry 须与 --only JOB 一起使用")
        print(f"重新开放失败的运行 {allow_retry(UnitOfWork(engine), args.only, clock.now())} 条")
    if args.now is None and (problem := skew_problem(engine)) is not None:
        print(problem, file=sys.stderr)
        return 1
    if args.once or args.now is not None:
        runs = run_due(UnitOfWork(engine), args.now or clock.now(), only=args.only, reports=args.reports_dir)
        for run in runs.values():
            print(
                f"{run.job} {run.due_at:%Y-%m-%d %H:%M} {run.outcome} count={run.count} {run.summary or ''}"
            )
            if run.error:
                print(run.error, file=sys.stderr)
        return 1 if any(r.outcome == FAILED for r in runs.values()) else 0
    from services.heap import freeze_startup_heap

    freeze_startup_heap()  # the runner lives for days: its start-up heap out of every full collection
    run_forever(engine, args.every, args.reports_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
