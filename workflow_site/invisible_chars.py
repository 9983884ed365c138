"""Make invisible and direction-changing characters visible in identifiers.

An id such as ``"abc\u202egpj.exe"`` renders as "abcexe.jpg", and ``"P-1\u200b"``
looks exactly like ``"P-1"``: a reviewer or an auditor cannot tell two records
apart, or is shown a name that reads differently from what is stored. Wherever
an identifier or a user-supplied value is shown, each such character is replaced
by a visible marker that names it (``⟨U+202E⟩``), so what is on screen is what
is stored. Letters, digits and ordinary spaces are left alone.

Pure Python, no Django: the template filter in
annotations/templatetags/loupe_format.py wraps it in markup.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

# Ordinary whitespace that is meant to be seen as such.
_PLAIN_WHITESPACE = {" ", "\t", "\n", "\r"}


def is_hidden_char(char: str) -> bool:
    """True for format characters (bidi controls, zero-width marks, BOM, soft
    hyphen), control characters, and spaces other than the ASCII space."""
    if char in _PLAIN_WHITESPACE:
        return False
    return unicodedata.category(char) in {"Cf", "Cc", "Zs", "Zl", "Zp", "Co", "Cn"}


def marker(char: str) -> str:
    return f"⟨U+{ord(char):04X}⟩"


def describe(char: str) -> str:
    """'U+202E RIGHT-TO-LEFT OVERRIDE' (or the code point alone when unnamed)."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}".strip()


def split_hidden(text: str) -> Iterator[tuple[str, bool]]:
    """Yield runs of `text` as (run, is_hidden); each hidden character is its own run."""
    start = 0
    for index, char in enumerate(text):
        if is_hidden_char(char):
            if index > start:
                yield text[start:index], False
            yield char, True
            start = index + 1
    if start < len(text):
        yield text[start:], False


def reveal(text: str) -> str:
    """Plain-text form: every hidden character replaced by its ⟨U+XXXX⟩ marker."""
    return "".join(marker(run) if hidden else run for run, hidden in split_hidden(text))


def has_hidden(text: str) -> bool:
    if text.isascii() and text.isprintable():
        return False  # printable ASCII (letters, digits, punctuation, the space): nothing hidden
    return any(is_hidden_char(char) for char in text)
