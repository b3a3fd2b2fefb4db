"""What went wrong with the store, in words a person can act on: busy, full, read-only, disconnected.

The pages' error boundary (``components/errors.py``) asks :func:`classify` for any exception that
reached it; the detail goes to the log under an incident id, the person gets the Chinese sentence.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.exc import DBAPIError, DisconnectionError, PendingRollbackError

from db.uow import StoreBusy

log = logging.getLogger("faults")


class Fault(StrEnum):
    BUSY = "busy"
    FULL = "full"
    READ_ONLY = "read_only"
    DISCONNECTED = "disconnected"
    UNSTORABLE_TEXT = "unstorable_text"
    STORE_MISSING = "store_missing"
    STORAGE = "storage"
    UNEXPECTED = "unexpected"


MESSAGES: dict[Fault, str] = {
    Fault.BUSY: "系统繁忙，本次操作未保存。请稍候几秒后点击“重试”。",
    Fault.FULL: "服务器存储空间已满，本次操作未保存。请联系系统管理员清理磁盘后重试。",
    Fault.READ_ONLY: "数据库当前为只读状态（维护中），本次操作未保存。请稍后重试或联系系统管理员。",
    Fault.DISCONNECTED: "与数据库的连接中断，本次操作未保存。请点击“重试”；如仍失败请联系系统管理员。",
    Fault.UNSTORABLE_TEXT: "输入的文字中含有无法保存的控制字符（如空字符），本次操作未保存。请删除这些字符（或重新输入，不要粘贴）后再提交。",
    Fault.STORE_MISSING: "数据库文件不存在或未初始化，本次操作未完成。请联系系统管理员恢复数据库文件（或重新运行 make run 初始化）。",
    Fault.STORAGE: "服务器存储读写出错（磁盘可能已满或损坏），本次操作未完成。请联系系统管理员检查磁盘空间和数据库文件后重试。",
    Fault.UNEXPECTED: "系统出现意外错误，本次操作未完成。请点击“重试”；如仍失败请把事件编号告知系统管理员。",
}

# Markers in the driver's message (SQLite's text, PostgreSQL's SQLSTATE classes and texts).
_UNSTORABLE = ("cannot contain nul",)
_FULL = ("database or disk is full", "no space left on device", "disk full", "53100")
_READ_ONLY = ("readonly database", "read-only", "read only", "25006")
_BUSY = (
    "database is locked",
    "database is busy",
    "lock timeout",
    "55p03",
    "40p01",
    "could not serialize",
    "statement timeout",  # a statement cut off while it waited (PostgreSQL's statement_timeout)
    "57014",
)
_MISSING = ("store file missing", "no such table")
_GONE = (
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "connection refused",
    "could not connect",
    "connection not open",
    "ssl connection has been closed",
    "57p01",
    "08006",
    "08003",
    "08001",
    "unable to open database file",
)


@dataclass(frozen=True)
class Incident:
    """One failure as a person sees it: what kind, what to do, and the id the log line carries."""

    fault: Fault
    message: str
    incident_id: str


def _text(exc: BaseException) -> str:
    parts = [str(exc)]
    orig = getattr(exc, "orig", None)
    if orig is not None:
        parts += [str(orig), str(getattr(orig, "sqlstate", "") or getattr(orig, "pgcode", "") or "")]
    return " ".join(parts).lower()


def classify(exc: BaseException) -> Fault:
    """The kind of store fault ``exc`` is (UNEXPECTED when it is not one the person can wait out).

    Text a form took but no store keeps (a pasted NUL character: PostgreSQL refuses it in any text
    column; a lone surrogate: not UTF-8, refused by both drivers) is told as such: the forms that check
    it themselves (随手拍, the API, imports) name the field; this is the net under every other one."""
    if isinstance(exc, UnicodeEncodeError) or (
        isinstance(exc, DBAPIError) and any(m in _text(exc) for m in _UNSTORABLE)
    ):
        return Fault.UNSTORABLE_TEXT
    if isinstance(exc, StoreBusy):
        return Fault.BUSY
    if isinstance(exc, PendingRollbackError | DisconnectionError):
        return Fault.DISCONNECTED
    if isinstance(exc, DBAPIError):
        text = _text(exc)
        if any(m in text for m in _FULL):
            return Fault.FULL
        if any(m in text for m in _READ_ONLY):
            return Fault.READ_ONLY
        if any(m in text for m in _BUSY):
            return Fault.BUSY
        if any(m in text for m in _MISSING):
            return Fault.STORE_MISSING
        if "disk i/o error" in text or "input/output error" in text:
            return Fault.STORAGE
        if exc.connection_invalidated or any(m in text for m in _GONE):
            return Fault.DISCONNECTED
    elif isinstance(exc, OSError) and any(m in _text(exc) for m in _FULL):
        return Fault.FULL
    return Fault.UNEXPECTED


def incident(exc: BaseException, where: str) -> Incident:
    """Log ``exc`` with its trace under a new incident id and return what to tell the person."""
    fault = classify(exc)
    incident_id = uuid.uuid4().hex[:8].upper()
    log.error("incident %s at %s: %s", incident_id, where, fault.value, exc_info=exc)
    return Incident(fault, MESSAGES[fault], incident_id)
