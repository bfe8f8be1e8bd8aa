"""The one exception type for failures a user can act on.

The CLI prints these as a single line without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class StackError(Exception):
    """An expected failure with a message that says what went wrong and what to do about it."""


class TopologyError(StackError):
    """topology.yaml is missing, unreadable or inconsistent; the message names the offending key."""
