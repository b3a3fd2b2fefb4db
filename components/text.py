"""User text shown as typed: escaping for Streamlit's Markdown (st.markdown, st.caption, st.write).

Streamlit renders Markdown (with LaTeX ``$…$`` and ``:red[…]`` directives) in most text elements, so a
title typed as ``**急**`` would show bold and ``[点我](…)`` as a link. Everything a user, an import or a
citizen typed goes through :func:`md_text` before it is put into Markdown; inside HTML given with
``unsafe_allow_html`` use ``md_text(value, html=True)``, which also escapes ``& < >``.
"""

from __future__ import annotations

import html as _html
import re

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones Streamlit's Markdown
# (GitHub flavour, LaTeX, directives, emoji shortcodes) gives a meaning to.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$:^=\"'])")
_MARKDOWN_AND_ANGLES = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$:^=\"'<>])")


def md_text(value: object, *, html: bool = False) -> str:
    """``value`` as Markdown that renders exactly as typed (one line per line)."""
    text = "" if value is None else str(value)
    if html:  # '&' first, and no quotes: entities must survive the Markdown escaping below
        return _MARKDOWN.sub(r"\\\1", _html.escape(text, quote=False))
    return _MARKDOWN_AND_ANGLES.sub(r"\\\1", text)
