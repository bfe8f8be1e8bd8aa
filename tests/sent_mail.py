"""The mail the notifications service sent, wherever the stack keeps it.

The local stack's SMTP sink saves each message as a .eml file in the stack's mail folder; in the compose stack it
goes to the Mailpit container, read through Mailpit's HTTP API (``/api/v1/messages``, ``/api/v1/message/ID/raw``).
"""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any, Protocol

import requests


class Mailbox(Protocol):
    def messages(self) -> list[Message]: ...


class FolderMailbox:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def messages(self) -> list[Message]:
        return [message_from_bytes(path.read_bytes()) for path in sorted(self.folder.glob("*.eml"))]


class MailpitMailbox:
    PAGE = 500

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def messages(self) -> list[Message]:
        listed = requests.get(f"{self.url}/api/v1/messages", params={"limit": self.PAGE}, timeout=10)
        listed.raise_for_status()
        ids = [summary["ID"] for summary in listed.json()["messages"]]
        return [message_from_bytes(self._raw(message_id)) for message_id in ids]

    def _raw(self, message_id: str) -> bytes:
        response = requests.get(f"{self.url}/api/v1/message/{message_id}/raw", timeout=10)
        response.raise_for_status()
        return response.content


def mailbox_of(info: dict[str, Any]) -> Mailbox:
    """The mailbox of a stack, from its stack.json."""
    if "mailpit" in info["emulators"]:
        return MailpitMailbox(info["emulators"]["mailpit"])
    return FolderMailbox(Path(info["mail"]))


def mail_mentioning(mailbox: Mailbox, text: str) -> list[Message]:
    return [message for message in mailbox.messages() if text in message.as_string()]
