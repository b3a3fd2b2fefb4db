"""Who may open which page and act on what: roles, page rights, and scope as a subtree of the five levels.

Pure: the services enforce these rules on every call; pages only use them to decide what to show.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from domain.vocabulary import Role

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


def in_scope(unit_id: int, scope_unit_id: int, parent_of: Mapping[int, int | None]) -> bool:
    """Whether ``unit_id`` lies in the subtree rooted at ``scope_unit_id`` (itself included)."""
    node: int | None = unit_id
    seen = 0
    while node is not None and seen < 16:  # five levels; the bound guards a corrupted cycle
        if node == scope_unit_id:
            return True
        node = parent_of.get(node)
        seen += 1
    return False


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


def redact(text: str) -> str:
    """Mask every mobile number in free text (138****5678): for logs, the trail, anything that leaves."""
    return MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def mask_name(name: str | None) -> str | None:
    """张** : the family name only."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)


def _action_roles() -> dict:
    # Imported here so the vocabulary of actions stays with the loop (domain.event_flow).
    from domain.event_flow import Action

    leaders = {Role.ADMIN, Role.COMMAND_CENTER, Role.TOWNSHIP_LEADER}
    return {
        Action.ACCEPT: frozenset(leaders | {Role.INSPECTOR}),
        Action.REJECT: frozenset(leaders),
        Action.DISPATCH: frozenset(leaders),
        Action.RETURN: frozenset({Role.DEPARTMENT, Role.INSPECTOR, Role.ADMIN}),
        Action.START: frozenset({Role.DEPARTMENT, Role.INSPECTOR, Role.ADMIN}),
        Action.RESOLVE: frozenset({Role.DEPARTMENT, Role.INSPECTOR, Role.ADMIN}),
        Action.VERIFY: frozenset(leaders),
        Action.REOPEN: frozenset(leaders),
        Action.RATE: frozenset(leaders),  # entered from the reporter's call-back (回访)
        Action.ARCHIVE: frozenset(leaders),
        Action.ESCALATE: frozenset(leaders | {Role.DEPARTMENT}),
        Action.COMMENT: frozenset(Role),  # 处置意见 / 督办意见: whoever may see the event being handled
    }


def may_act(user: CurrentUser, action) -> bool:
    """Whether the user's role may take ``action`` on an event in their scope."""
    return user.role in _action_roles().get(action, frozenset())


def department_may_act(action, *, leads: bool, cooperates: bool) -> bool:
    """Whether a department's handler may take ``action`` on an event (decision 0005): the lead department
    moves it; a cooperating department (一件事 协办) sees it and writes its opinion (处置意见), nothing more."""
    from domain.event_flow import NOTE_ONLY

    return leads or (cooperates and action in NOTE_ONLY)
