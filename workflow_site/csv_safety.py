"""CSV cells a spreadsheet would run as a formula are neutralised (OWASP "CSV injection").

Text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
leading apostrophe, so Excel or LibreOffice shows it as text instead of
evaluating it. Numbers are left alone (they are data, not text). Used by every
CSV Loupe writes: exports, and the full report of a rejected import. The import
takes that apostrophe off again (NEUTRALISED_CELL), so an exported file imports
the same ids, categories and labels.
"""

from __future__ import annotations

from typing import Any

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A cell neutralise_formula wrote: the apostrophe, then one of _FORMULA_STARTS (group 1).
NEUTRALISED_CELL = r"^'([=+\-@\t\r])"


def neutralise_formula(value: Any) -> Any:
    """Text a spreadsheet would evaluate gets a leading apostrophe; anything else is unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
