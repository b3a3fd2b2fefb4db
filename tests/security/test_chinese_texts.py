"""Every visible string in Chinese: every page, opened by every demo role, shows none of Streamlit's
English defaults ("Choose an option", "Press Enter", "Upload", …) and never a "None"."""

import pytest

from tests.security.conftest import ANONYMOUS, DEMO, PAGES, open_page, shown_text
from tests.security.test_page_matrix import EXPECTED

FORBIDDEN = [
    "None",
    "Choose an option",
    "Choose options",
    "Press Enter",
    "Press Ctrl+Enter",
    "Page not found",
]
FORBIDDEN_LABELS = [*FORBIDDEN, "Upload"]


def _widget_texts(at) -> str:
    """Labels, placeholders and options of the page's widgets (what Streamlit draws around them)."""
    parts = []
    for kind in ("selectbox", "multiselect", "text_input", "text_area", "number_input", "radio", "button"):
        for el in getattr(at, kind):
            parts.append(str(getattr(el, "label", "")))
            parts.append(str(getattr(el.proto, "placeholder", "")))
            if kind in ("selectbox", "multiselect", "radio"):
                parts.extend(str(o) for o in el.options)
    for el in at.selectbox:  # an empty box without a placeholder shows Streamlit's own
        if _nothing_chosen(el):  # Streamlit then shows "Choose an option"
            parts.append(f"Choose an option ({el.label})")
    for el in at.multiselect:
        if not el.proto.placeholder:
            parts.append(f"Choose options ({el.label})")
    for el in at.get("file_uploader"):
        parts.append(str(el.proto.label))
    return "\n".join(parts)


CASES = [(user, key) for user in [*DEMO, ANONYMOUS] for key in sorted(EXPECTED[user]) if key in PAGES]


def _nothing_chosen(el) -> bool:
    """A select box with no choice and no placeholder (None as a labelled option, e.g. 全部角色, is a choice)."""
    if el.value is not None or el.proto.placeholder:
        return False
    try:
        shown = str(el.format_func(None))
    except Exception:  # the format function knows no None: None is not an option
        return True
    return shown not in el.options


def _null_cells(at) -> list[str]:
    """Tables whose empty cells the browser would show as "None" (st.dataframe) or "None"/"nan" (st.table)."""
    return [
        f"None ({', '.join(map(str, t.value.columns[t.value.isna().any()]))})"
        for t in [*at.dataframe, *at.table]
        if t.value.isna().any().any()
    ]


@pytest.mark.parametrize(("username", "key"), CASES)
def test_no_page_shows_an_english_default_or_none_to_any_role(store, demo_users, username, key):
    at = open_page(key, demo_users.get(username))
    assert not at.exception
    text, widgets = shown_text(at), _widget_texts(at)
    found = [w for w in FORBIDDEN if w in text] + [w for w in FORBIDDEN_LABELS if w in widgets]
    found += [w for w in widgets.splitlines() if w.startswith("Choose")] + _null_cells(at)
    assert found == [], f"{username} on {key}: {found}"
