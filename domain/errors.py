"""The one shape of "what the user typed is wrong": every field's problem at once, in Chinese."""

from __future__ import annotations

from collections.abc import Mapping


class FieldProblems(ValueError):
    """Input that cannot be accepted; ``problems`` maps each field (its Chinese label) to its message.

    Raised before anything is written, with every problem found (not only the first), so a form can
    mark each field and a file import can list each row.
    """

    def __init__(self, problems: Mapping[str, str]):
        self.problems = dict(problems)
        super().__init__("；".join(f"{k}：{v}" for k, v in self.problems.items()))
