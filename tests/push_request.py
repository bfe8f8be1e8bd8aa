"""A push body as a Flask request in the test's own process, for calling a handler directly.

One Flask app serves every such request: building an app compiles its routes with ``ast.parse``, which CPython 3.11
does not make safe across threads (tests that deliver from a thread pool failed with "AST constructor recursion
depth mismatch"); a request context on one app is per thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import flask

_APP = flask.Flask("tests")


@contextmanager
def push_request(body: Any) -> Iterator[flask.Request]:
    """``POST /`` with ``body`` as JSON, as the request a handler reads (``flask.request``)."""
    with _APP.test_request_context("/", method="POST", json=body):
        yield flask.request
