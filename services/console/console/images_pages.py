"""The images pages: upload a photo, see its renditions beside it when they are ready, or why it was rejected.

GET  /images                      the upload form and the recent images (works without JavaScript)
POST /images                      the upload (multipart form, CSRF-checked, size-checked), then 303 to /images
GET  /images/recent               the recent images as JSON ``{"html": ..., "waiting": n}`` for assets/live.js
GET  /images/renditions/<name>    a rendition's bytes, read from the renditions bucket (it is private)

The list is one template (``_image_list.html``) for the page and for its live updates, so everything shown is
escaped in one place, by Jinja2.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from werkzeug.exceptions import RequestEntityTooLarge

from console import csrf
from console.image_list import recent, record_id, waiting_count
from console.image_uploads import (
    CONSOLE_UPLOADS,
    FORM_OVERHEAD_BYTES,
    UploadRefused,
    check_size,
    content_type,
    file_size,
    limit_words,
    object_name,
    store,
    upload_fields,
    upload_limit,
)
from console.page_error import PageError, only
from console.pages import SECURITY_HEADERS, Response, environment, redirect, render

log = logging.getLogger("console")
FIELD = "photo"
RENDITIONS_PREFIX = "/images/renditions/"
# What the console serves from the renditions bucket: the images service writes only these.
RENDITION_TYPES = frozenset({"image/jpeg", "image/webp", "image/avif", "image/png"})
MAX_RENDITION_BYTES = 32 * 1024 * 1024
MAX_OBJECT_NAME_BYTES = 1024


class ImagePages:
    def __init__(self, service: Any) -> None:
        self.service = service
        self.limit = upload_limit(os.environ)

    def route(self, request: Any, parts: list[str], token: str) -> Response:
        if parts == ["images"]:
            if request.method == "POST":
                return self.upload(request, token)
            only(request, "GET", "POST")
            return self.page(request, token)
        if parts == ["images", "recent"]:
            only(request, "GET")
            return self.recent_json()
        if parts[:2] == ["images", "renditions"] and len(parts) > 2:
            only(request, "GET")
            return self.rendition(request.path[len(RENDITIONS_PREFIX) :])
        raise PageError(404, "Not found", f"There is no page at {request.path}.")

    # --- pages ------------------------------------------------------------------------------------------------

    def page(self, request: Any, token: str, *, refused: UploadRefused | None = None) -> Response:
        entries = recent(self.service.db)
        uploaded = request.args.get("uploaded", "") if refused is None else ""
        return render(
            "images.html",
            refused.status if refused else 200,
            page="images",
            entries=entries,
            waiting=waiting_count(entries),
            limit=self.limit,
            limit_text=f"{self.limit / 1024 / 1024:.0f} MiB" if self.limit >= 1024 * 1024 else f"{self.limit} bytes",
            uploaded=uploaded,
            refused=str(refused) if refused else "",
            field=FIELD,
            csrf_field=csrf.FIELD,
            csrf_token=token,
        )

    def recent_json(self) -> Response:
        entries = recent(self.service.db)
        html = environment().get_template("_image_list.html").render(entries=entries, waiting=waiting_count(entries))
        body = json.dumps({"html": html, "waiting": waiting_count(entries)})
        return body, 200, {**SECURITY_HEADERS, "Content-Type": "application/json"}

    def upload(self, request: Any, token: str) -> Response:
        """Refuse what is too large before reading it (the declared length), then while reading it (a body that
        declares none is cut off at the limit), then by the file's own size; store it only then."""
        try:
            stored = self._receive(request)
        except UploadRefused as refused:
            log.info("upload refused", extra={"fields": {"reason": str(refused), "status": refused.status}})
            return self.page(request, token, refused=refused)
        self.service.db.collection(CONSOLE_UPLOADS).document(
            record_id(stored.bucket, stored.name, stored.generation)
        ).set(upload_fields(stored, datetime.now(UTC)))
        log.info("uploaded", extra={"fields": {"object": stored.name, "bytes": stored.size}})
        return redirect("/images?" + urlencode({"uploaded": stored.filename}))

    def _receive(self, request: Any) -> Any:
        too_large = UploadRefused(413, f"This upload is larger than the {limit_words(self.limit)} a photo may be.")
        most = self.limit + FORM_OVERHEAD_BYTES
        if request.content_length is not None and request.content_length > most:
            raise UploadRefused(
                413, f"This upload is {request.content_length} bytes; photos may be at most {limit_words(self.limit)}."
            )
        request.max_content_length = most
        try:
            csrf.check(request)  # parses the form: the file is spooled to disk past a small size, never all in memory
            sent = request.files.get(FIELD)
        except RequestEntityTooLarge:
            raise too_large from None
        except csrf.CrossSiteRequest as exc:
            log.warning("cross-site upload refused", extra={"fields": {"reason": str(exc)}})
            raise UploadRefused(403, f"Refused: {exc}. Open the images page again and upload from there.") from None
        if sent is None or not sent.filename:
            raise UploadRefused(400, "No file was chosen: choose a photo, or drop one on the page.")
        size = file_size(sent.stream)
        check_size(size, self.limit)
        config = self.service.config
        name = object_name(sent.filename, datetime.now(UTC))
        return store(
            self.service.storage,
            config.bucket("uploads"),
            name,
            sent.stream,
            size,
            content_type(sent.mimetype),
            sent.filename,
        )

    def rendition(self, name: str) -> Response:
        """A rendition's bytes, from the renditions bucket only, with the type the images service gave it."""
        if not name or len(name.encode()) > MAX_OBJECT_NAME_BYTES or "\0" in name:
            raise PageError(404, "Not found", "That is not a rendition name.")
        blob = self.service.storage.bucket(self.service.config.bucket("renditions")).get_blob(name)
        if blob is None:
            raise PageError(404, "Not found", f"There is no rendition {name!r}.")
        if blob.content_type not in RENDITION_TYPES or (blob.size or 0) > MAX_RENDITION_BYTES:
            raise PageError(404, "Not found", f"{name!r} is not a rendition the console shows.")
        data = blob.download_as_bytes()  # this generation: get_blob named it
        headers = {
            **SECURITY_HEADERS,
            "Content-Type": blob.content_type,
            "Content-Disposition": "inline",
            "Cache-Control": "private, max-age=300",
        }
        return data, 200, headers
