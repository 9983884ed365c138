"""Reason codes: a dataset's short list of why a reviewer corrects the model (issue 8, point 6).

Configured per dataset (Dataset.reason_codes: code + text, in display order),
picked on the card apart from the free-text note, stored on the review and in
its audit event, so corrections can be counted by reason. When a dataset has
codes, a correction must give one; accepting the model or skipping needs none.

Model admins change the list on the queue settings page or its API
(annotations/workbench.py, audited as dataset.reason_codes_changed). A review
keeps the code it recorded: removing or renaming a code changes no review, it
only stops new answers from picking it.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError

MAX_CODES = 20
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def reason_codes_check(codes: Any) -> None:
    """Raise ValidationError (field reason_codes) unless `codes` is a list of distinct {code, text} entries."""
    if not isinstance(codes, list):
        raise ValidationError({"reason_codes": "Give a list of {code, text} entries."})
    if len(codes) > MAX_CODES:
        raise ValidationError({"reason_codes": f"At most {MAX_CODES} reason codes (there are {len(codes)})."})
    seen: set[str] = set()
    for position, entry in enumerate(codes):
        where = f"reason_codes[{position}]"
        if not isinstance(entry, dict) or set(entry) != {"code", "text"}:
            raise ValidationError({where: 'Each reason code is {"code": ..., "text": ...}.'})
        code, text = entry["code"], entry["text"]
        # Each message names the entry it refuses, so a long list can be fixed without counting positions.
        if not isinstance(code, str) or not _CODE.match(code):
            raise ValidationError(
                {where: f"{code!r} is not a code: use 1-40 lower-case letters, digits, - or _, starting with one."}
            )
        if not isinstance(text, str) or not text.strip() or len(text) > 200:
            raise ValidationError({where: f"The code {code!r} needs a text of 1-200 characters."})
        if code in seen:
            raise ValidationError({where: f"The code {code!r} appears twice."})
        seen.add(code)


def reason_code_for_answer(*, codes: list[dict[str, str]], code: str, correcting: bool) -> str:
    """The code to store on a review: checked against the dataset's list; required for a correction."""
    code = code.strip()
    known = {entry["code"] for entry in codes}
    if code and code not in known:
        raise ValidationError({"reason_code": f"Unknown reason code {code!r} for this dataset."})
    if correcting and known and not code:
        texts = "; ".join(entry["text"] for entry in codes)
        raise ValidationError({"reason_code": f"Say why you correct the model: pick a reason ({texts})."})
    return code
