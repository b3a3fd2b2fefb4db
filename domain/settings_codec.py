"""Admin-edited rules stored as JSON text: the one way their codecs read that text."""

from __future__ import annotations

import json
from typing import Any


def parse_json(text: str, error_cls: type[Exception]) -> Any:
    """``text`` parsed as JSON, or ``error_cls([Chinese message])`` naming the line of the first error.

    ``error_cls`` is a rules error that takes the list of every problem (``RulesError``, ``DeadlineRulesError``).
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error_cls([f"不是有效的 JSON（第 {exc.lineno} 行）"]) from None
