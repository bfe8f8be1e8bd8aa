"""A page that cannot be shown: every page module raises it, the router answers it with the error page."""

from __future__ import annotations

from typing import Any


class PageError(Exception):
    """A page that cannot be shown: its HTTP status, a title and a sentence that says why."""

    def __init__(self, status: int, title: str, message: str, allow: str | None = None) -> None:
        super().__init__(message)
        self.status, self.title, self.message, self.allow = status, title, message, allow


def only(request: Any, *methods: str) -> None:
    """405, naming the methods allowed, unless the request uses one of them."""
    if request.method not in methods:
        use = " or ".join(methods)
        raise PageError(
            405, "Method not allowed", f"{request.method} is not allowed here; use {use}.", ", ".join(methods)
        )
