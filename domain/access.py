"""Who may open which page and act on what: roles, page rights, and scope as a subtree of the five levels.

Pure: the services enforce these rules on every call; pages only use them to decide what to show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.event_flow import Action
from domain.vocabulary import EventStatus, Role

# Page key → roles that may open it. Keys are the stable URL paths.
PAGE_ROLES: dict[str, frozenset[Role]] = {
    "home": frozenset(Role),
    "risk_map": frozenset({Role.ADMIN, Role.COMMAND_CENTER, Role.TOWNSHIP_LEADER}),
    "events": frozenset(Role),
    "report": frozenset(Role),
    "inspections": frozenset({Role.ADMIN, Role.COMMAND_CENTER, Role.TOWNSHIP_LEADER}),
    "my_day": frozenset({Role.INSPECTOR, Role.ADMIN}),
    "big_screen": frozenset({Role.ADMIN, Role.COMMAND_CENTER}),
    "admin": frozenset({Role.ADMIN}),
    "boundaries": frozenset({Role.ADMIN}),  # 区划导入: an administrator of the whole store (services check)
    # 进度查询: a citizen follows up a report by its number and phone digits; public like 随手拍.
    "track": frozenset(Role),
}

#: Where each role lands after logging in (its "home" on a phone): the inspector on today's route, a
#: department handler on its events (我的待办), the leaders on the overview. Citizens do not log in: their
#: home is 随手拍 (``report``), linked from the login page with 进度查询 (``track``).
HOME_PAGE: dict[Role, str] = {
    Role.ADMIN: "home",
    Role.COMMAND_CENTER: "home",
    Role.TOWNSHIP_LEADER: "home",
    Role.DEPARTMENT: "events",
    Role.INSPECTOR: "my_day",
}

# Permissions beyond opening pages.
_LEADERS = frozenset({Role.ADMIN, Role.COMMAND_CENTER, Role.TOWNSHIP_LEADER})
PERMISSIONS: dict[str, frozenset[Role]] = {
    "edit_rules": frozenset({Role.ADMIN}),  # thresholds, dispatch rules, deadlines
    "unmask_personal_data": frozenset({Role.ADMIN, Role.COMMAND_CENTER}),  # PIPL: logged with who and why
    "import_events": _LEADERS,  # 12345 / 110 files, every row inside the importer's scope
    "import_venues": frozenset({Role.ADMIN, Role.TOWNSHIP_LEADER}),  # the township keeps its venue register
    "plan_inspections": _LEADERS,  # 专项整治 and moving visits between inspectors
    "event_analytics": _LEADERS,  # the event page's 分析排名 / 预警 / 报表 / 导入 views
}


@dataclass(frozen=True)
class CurrentUser:
    """The logged-in person as the services see them: role plus scope (a unit and its subtree)."""

    id: int
    username: str
    display_name: str
    role: Role
    scope_unit_id: int
    department_id: int | None = None

    def may_open(self, page: str) -> bool:
        return self.role in PAGE_ROLES.get(page, frozenset())

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS.get(permission, frozenset())


@dataclass(frozen=True)
class SessionLimits:
    """How long a login session (登录会话) lasts: ``idle`` without any use, ``absolute`` from the login."""

    idle: timedelta
    absolute: timedelta


#: Per role (decision 0017): the administrator's session is short (it can change everything); a
#: leader's or a department's lasts the working week; an inspector's phone stays signed in through a
#: fortnight in the field, but not through half a day untouched. A reload, a bookmark or a new tab
#: keeps the session; a password change, a role or scope change and a disabled account end it.
SESSION_LIMITS: dict[Role, SessionLimits] = {
    Role.ADMIN: SessionLimits(idle=timedelta(minutes=30), absolute=timedelta(hours=12)),
    Role.COMMAND_CENTER: SessionLimits(idle=timedelta(hours=4), absolute=timedelta(hours=24)),
    Role.TOWNSHIP_LEADER: SessionLimits(idle=timedelta(hours=8), absolute=timedelta(days=7)),
    Role.DEPARTMENT: SessionLimits(idle=timedelta(hours=8), absolute=timedelta(days=7)),
    Role.INSPECTOR: SessionLimits(idle=timedelta(hours=12), absolute=timedelta(days=14)),
}
#: Why a login session ended, as the trail and the login form name it.
SESSION_END_LABELS: dict[str, str] = {
    "idle": "长时间未操作，登录已过期，请重新登录",
    "absolute": "登录已超过有效期，请重新登录",
    "credentials": "账号的密码、角色或管辖范围已变更，请重新登录",
    "disabled": "账号已停用或不存在",
    "logout": "已退出登录",
}


def session_end(role: Role, started_at: datetime, last_seen_at: datetime, now: datetime) -> str | None:
    """Why a login session of ``role`` has ended at ``now`` ("absolute" past its lifetime, "idle" past
    its idle time), or None while it runs. The absolute limit is checked first: it never slides."""
    limits = SESSION_LIMITS[role]
    if now >= started_at + limits.absolute:
        return "absolute"
    if now >= last_seen_at + limits.idle:
        return "idle"
    return None


def mask_phone(phone: str | None) -> str | None:
    """138****5678: the first 3 and last 4 digits of a mobile number, the rest hidden."""
    if not phone:
        return phone
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


# A mainland mobile number standing alone in text (an 11-digit run, not part of a longer number).
MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def is_mobile(text: str) -> bool:
    """Whether ``text`` is exactly one mainland mobile number (11 digits, 13x–19x): the one phone rule of
    what people type (随手拍, imported events) and what the trail masks (:func:`redact`)."""
    return MOBILE.fullmatch(text) is not None


#: A landline as written in China: area code (0 + 2–3 digits), then 7–8 digits, a hyphen or space between.
LANDLINE = re.compile(r"(0\d{2,3})[- ]?(\d{7,8})")


def tidy_phone(text: str) -> tuple[str | None, bool]:
    """A phone number as an exported sheet writes it, as stored: (the number, whether it is one). A mobile
    with +86/86, spaces, hyphens, brackets or full-width digits → its 11 digits; a landline → 0570-3021234;
    blank → (None, True); anything else → (the text, False)."""
    plain = _ascii_digits(text).strip()
    if not plain:
        return None, True
    squeezed = re.sub(r"[\s\-()（）]", "", plain)
    mobile = re.sub(r"^(?:\+?86)(?=1[3-9]\d{9}$)", "", squeezed)
    if is_mobile(mobile):
        return mobile, True
    landline = LANDLINE.fullmatch(re.sub(r"[()（）]", "", plain).replace("  ", " "))
    if landline is not None:
        return f"{landline.group(1)}-{landline.group(2)}", True
    return plain, False


#: Full-width and other Unicode decimal digits, read as ASCII ones (one character for one: positions are kept).
#: The lookahead lets the engine skip ASCII text instead of trying the digit class at every character.
_OTHER_DIGIT = re.compile(r"(?=[^\x00-\x7f])\d")


def _ascii_digits(text: str) -> str:
    return _OTHER_DIGIT.sub(lambda m: str(int(m.group())), text)


#: What may stand between a number's groups: a space (also no-break and ideographic, as pasted or typed
#: in a full-width IME), a hyphen (also full-width, en and em dashes) or a dot.
_SEP = "[ \u00a0\u3000\\-\uff0d\u2013\u2014.\uff0e]"

#: Numbers in free text that name a person: a mainland mobile with or without +86/86 and with a
#: separator (:data:`_SEP`) between its groups (138 1234 5678, +86-138-1234-5678, 138.1234.5678); a
#: landline with its area code (0570-8765432, (0570)8765432, 010 62345678); an 18-character resident ID
#: (身份证) whose birth date is a date, its X full-width or not, its region, birth date and rest apart or not.
#: The lookahead names every character a number can start with: the engine skips to those instead of
#: trying the three alternatives at every character (8 µs instead of 44 µs for a new event's audit text).
_IN_TEXT = re.compile(
    r"(?=[+＋(（0-9])(?<![0-9])(?:"
    rf"(?P<mobile>(?:(?:\+|＋)?86{_SEP}?)?1[3-9][0-9]{_SEP}?[0-9]{{4}}{_SEP}?[0-9]{{4}})(?![0-9])"
    rf"|(?P<landline>[(（]?0[1-9][0-9]{{1,2}}[)）]?{_SEP}?[2-9][0-9]{{6,7}})(?![0-9])"
    rf"|(?P<resident>[1-9][0-9]{{5}}{_SEP}?(?:19|20)[0-9]{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    rf"{_SEP}?[0-9]{{3}}[0-9XxＸｘ])(?![0-9A-Za-z]))"
)


def _masked(number: str, typed: str) -> str:
    """``typed`` (``number`` as typed: the same length, other digits) with its middle hidden: the last 4
    digits kept, and the first 3 of a mobile (after any +86), the area code of a landline, the region
    (6 digits) of a resident ID."""
    digits = [i for i, ch in enumerate(number) if ch.isalnum()]
    if len(digits) >= 17:  # resident ID
        keep_head = 6
    elif number.lstrip("+＋").startswith("86") and len(digits) >= 13:
        keep_head = 5  # 86 and the mobile's first 3
    elif number.lstrip("(（").startswith("0"):
        keep_head = 3 if number.lstrip("(（")[1] in "12" else 4  # 010, 021 … or 0570
    else:
        keep_head = 3
    hidden = set(digits[keep_head:-4])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(typed))


def redact(text: str) -> str:
    """Mask every phone number and resident ID in free text (138****5678, 0570-***5432,
    330802********1234), in whatever digits and separators it was typed: for logs, the trail, anything
    that leaves. Other numbers (grid codes, dates, counts) are left as they are."""
    plain = _ascii_digits(text)
    found = list(_IN_TEXT.finditer(plain))
    if not found:
        return text
    out, at = [], 0
    for m in found:
        out += [text[at : m.start()], _masked(m.group(0), text[m.start() : m.end()])]
        at = m.end()
    return "".join(out) + text[at:]


#: A house number and what follows it (88号, 12-3号, 3幢2单元501室, 5号楼): in text that leaves the
#: cockpit (the Open311 answers) only the road is kept, as the address is rounded to about 100 m.
_HOUSE = re.compile(
    r"[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?(?:号楼|号|弄|幢|栋|座|单元|室|层|楼|户)"
    r"(?:[ -]?[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?(?:号楼|号|幢|栋|座|单元|室|层|楼|户))*"
)


def round_address(text: str) -> str:
    """``text`` with house, building and room numbers hidden: 紫荆路88号3幢2单元501室 → 紫荆路*号*幢*单元*室."""
    plain = _ascii_digits(text)
    out, at = [], 0
    for m in _HOUSE.finditer(plain):
        if not any(ch.isdigit() for ch in m.group(0)):
            continue
        out += [text[at : m.start()], re.sub(r"[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?", "*", m.group(0))]
        at = m.end()
    return "".join(out) + text[at:] if out else text


def public_text(text: str) -> str:
    """Free text as anyone may read it (the Open311 answers, 进度查询's replies, the public 随手拍 page's
    possible duplicates): phone and resident ID numbers masked (:func:`redact`), house numbers hidden
    (:func:`round_address`)."""
    return round_address(redact(text))


def mask_name(name: str | None) -> str | None:
    """张** : the family name only."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)


#: Which roles may take each action of the loop (the loop's own table says from which status).
ACTION_ROLES: dict[Action, frozenset[Role]] = {
    Action.ACCEPT: frozenset(_LEADERS | {Role.INSPECTOR}),
    Action.REJECT: frozenset(_LEADERS),
    Action.DISPATCH: frozenset(_LEADERS),
    Action.RETURN: frozenset({Role.DEPARTMENT, Role.INSPECTOR, Role.ADMIN}),
    Action.START: frozenset({Role.DEPARTMENT, Role.INSPECTOR, Role.ADMIN}),
    Action.RESOLVE: frozenset({Role.DEPARTMENT, Role.INSPECTOR, Role.ADMIN}),
    Action.VERIFY: frozenset(_LEADERS),
    Action.REOPEN: frozenset(_LEADERS),
    Action.RATE: frozenset(_LEADERS),  # entered from the reporter's call-back (回访)
    Action.ARCHIVE: frozenset(_LEADERS),
    Action.ESCALATE: frozenset(_LEADERS | {Role.DEPARTMENT}),
    Action.COMMENT: frozenset(Role),  # 处置意见 / 督办意见: whoever may see the event being handled
}


def may_act(user: CurrentUser, action: Action) -> bool:
    """Whether the user's role may take ``action`` on an event in their scope."""
    return user.role in ACTION_ROLES.get(action, frozenset())


#: The handling actions of the loop (处置): taken by whoever handles the event on the ground.
HANDLING: frozenset[Action] = frozenset({Action.START, Action.RETURN, Action.RESOLVE})


def handler_may_act(role: Role, action: Action, *, led_by_department: bool) -> bool:
    """Whether ``role`` may take ``action`` given who handles the event: an event with a lead department is
    handled (开始处置 / 退单 / 办结) by that department's handlers only (:func:`department_may_act`); a grid
    worker handles only what was handed to their village or grid with no lead department (交由村（社区）自行
    处置). Every other action, and every other role, is the role table's (:func:`may_act`) and scope's."""
    return not (role is Role.INSPECTOR and action in HANDLING and led_by_department)


def owner_may_act(role: Role, action: Action, *, owns: bool) -> bool:
    """Whether a leader may take ``action`` given whether the event's owning level (``owner_unit_id``) lies in
    their area (``owns``): after 上移 the event is the level above's to move (矛盾上交 goes up, not around);
    a leader below still sees it, follows its trail and writes opinions (处置意见). Handlers and grid
    workers are ruled by the lead department (:func:`department_may_act`, :func:`handler_may_act`)."""
    from domain.event_flow import NOTE_ONLY

    return owns or role not in _LEADERS or action in NOTE_ONLY


def department_may_act(action: Action, *, leads: bool, cooperates: bool, status: str | None = None) -> bool:
    """Whether a department's handler may take ``action`` on an event (decision 0005): the lead department
    moves it while it is with them (``status`` 已派单 or 处置中: after its 上移 or 退单 the event waits on a
    leader, and the department that had it only sees it and writes its opinion); a cooperating department
    (一件事 协办) sees it and writes its opinion (处置意见), nothing more."""
    from domain.event_flow import NOTE_ONLY

    if action in NOTE_ONLY:
        return leads or cooperates
    with_department = status is None or EventStatus(status) in (
        EventStatus.DISPATCHED,
        EventStatus.IN_PROGRESS,
    )
    return leads and with_department
