"""A reference row of the cold-start benchmark: the bare function plus one pydantic model of the push envelope.

What any function that validates its input with pydantic pays at start (pydantic's import and one model build),
before any code of this project: it shows how much of the 1.5× budget over bare the library alone takes.
The model carries a length constraint, as eventkit's own envelope model does, since constraints import more.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, Field


class PushMessage(BaseModel):
    message_id: str = Field(validation_alias=AliasChoices("messageId", "message_id"), min_length=1)
    attributes: dict[str, str] = Field(default_factory=dict)
    data: bytes = b""


class PushEnvelope(BaseModel):
    message: PushMessage
    subscription: str | None = None


def bare_pydantic(request: Any) -> tuple[str, int]:
    PushEnvelope.model_validate_json(request.get_data())
    return "ok", 200
