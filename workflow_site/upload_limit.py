"""Stop an upload at the size limit while it arrives, not after it has been written to disk.

Django writes a large upload to a temporary file before any view runs, so a
size check in the view comes after the whole body was received: a 100 GB
request would fill the disk first. This handler sits first in
FILE_UPLOAD_HANDLERS, counts the bytes of each file as they stream in, and
stops the upload (without reading the rest of the body) as soon as one passes
LOUPE_IMPORT_MAX_BYTES. It marks the request, so the view can say why the file
is missing: `upload_over_limit(request)` gives the message.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

_MARK = "_loupe_upload_over_limit"
_FORM_FIELDS_ROOM = 1024 * 1024


def upload_limit_message() -> str:
    return f"The file is larger than the limit of {settings.IMPORT_MAX_BYTES:,} bytes."


class UploadLimitHandler(FileUploadHandler):
    """Passes every chunk on to the next handler, and stops the upload once a file passes the limit."""

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None
    ) -> None:
        self.received = 0
        # A request that says up front it is too big (beyond room for the form's other fields) is
        # stopped at its first file chunk: the fields before the file (the CSRF token) are still read.
        self.declared_too_big = content_length > settings.IMPORT_MAX_BYTES + _FORM_FIELDS_ROOM
        # Far too big: drop the connection rather than read gigabytes only to discard them.
        self.reset = content_length > 2 * settings.IMPORT_MAX_BYTES

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.declared_too_big or self.received > settings.IMPORT_MAX_BYTES:
            if self.request is not None:
                setattr(self.request, _MARK, True)
            # The rest of the body is read and discarded (nothing is written), so the client gets the page.
            raise StopUpload(connection_reset=self.reset)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the file


def upload_over_limit(request: HttpRequest) -> str | None:
    """The message to show when this request's upload was stopped at the size limit, else None."""
    return upload_limit_message() if getattr(request, _MARK, False) else None
