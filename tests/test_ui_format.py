"""Typed text shown inside Streamlit's markdown alerts reads exactly as typed."""

import re

from hypothesis import given
from hypothesis import strategies as st

from ui.format import plain

# CommonMark: a backslash before ASCII punctuation shows that character literally.
_COMMONMARK_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


@given(st.text())
def test_plain_text_unescapes_to_exactly_what_was_typed(typed):
    assert _COMMONMARK_ESCAPE.sub(r"\1", plain(typed)) == typed


def test_links_markup_and_shortcodes_are_neutralised():
    shown = plain("[click](javascript:alert(1)) <script>x</script> **bold** :smile: # heading")
    assert "](" not in shown and "<script>" not in shown and "**" not in shown and ":smile:" not in shown
