"""Cross-site request forgery: a state-changing request must be a POST from one of the console's own pages.

Two checks, both required (OWASP's "defense in depth" for CSRF):

1. Fetch metadata, else origin: a browser says where a request comes from; a request another site made is
   refused. ``Sec-Fetch-Site`` decides where the browser sends it (every current browser does): it is the
   browser's own judgement, so it holds behind a proxy that rewrites ``Host`` (``gcloud run services proxy``),
   where comparing ``Origin`` with ``Host`` would refuse the console's own forms. Without it, ``Origin`` must name
   this host.
2. A double-submit token: every page sets a random token in a ``SameSite=Strict`` cookie and puts the same token in
   its forms; a POST whose form field does not equal its cookie is refused. Stateless, so it holds across
   instances.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

COOKIE = "console_csrf"
FIELD = "csrf_token"
ALLOWED_FETCH_SITES = {"same-origin", "none"}  # "none": the operator typed the URL or used a bookmark


class CrossSiteRequest(Exception):
    """Refused: the message says why, in words an operator can act on."""


def token_of(request: Any) -> str:
    """The request's token (from its cookie), or a new one; :func:`cookie_header` sets it when it is new."""
    token = request.cookies.get(COOKIE, "")
    return token if _well_formed(token) else secrets.token_urlsafe(32)


def cookie_header(request: Any, token: str) -> dict[str, str]:
    if request.cookies.get(COOKIE) == token:
        return {}
    secure = request.headers.get("X-Forwarded-Proto", request.scheme) == "https"
    flags = "; Secure" if secure else ""
    return {"Set-Cookie": f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{flags}"}


def check(request: Any) -> None:
    """Raise :class:`CrossSiteRequest` unless this POST came from a console page in the same browser."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site is not None:
        if site not in ALLOWED_FETCH_SITES:
            raise CrossSiteRequest(f"the request came from another site (Sec-Fetch-Site: {site})")
    elif origin is not None and urlsplit(origin).netloc != request.host:
        raise CrossSiteRequest(f"the request came from {origin}, not from this console")
    cookie, sent = request.cookies.get(COOKIE, ""), request.form.get(FIELD, "")
    if not (_well_formed(cookie) and hmac.compare_digest(cookie.encode(), sent.encode())):
        raise CrossSiteRequest("the form's token is missing or out of date")


def _well_formed(token: str) -> bool:
    return 32 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()
