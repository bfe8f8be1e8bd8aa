"""Which mail an order event becomes, pure: recipient, subject, text and a Message-ID derived from the event id.

No I/O here: ``main.py`` asks :func:`compose` and hands the result to a sender (sender.py). An event without an
email address is no mail (``None``): there is nobody to write to, and retrying would not change that.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from eventkit.catalog import ORDER_CANCELLED, ORDER_CONFIRMED
from eventkit.catalog.telemetry import TELEMETRY_ALERT

# Cancellation reasons as the customer should read them; anything else is shown as it came.
_REASONS = {
    "out_of_stock": "some items are out of stock",
    "unknown_sku": "some items are no longer sold",
    "declined": "the payment was declined",
    "limit_exceeded": "the payment was declined (amount above the limit)",
    "missing_token": "no payment method was given",
}
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    message_id: str
    event_id: str
    order_id: str


def message_id(event_id: str, recipient: str, domain: str) -> str:
    """``<event-id.recipient-hash@domain>``: the same event to the same recipient always has the same Message-ID,
    so a mail that did go out twice (a crash between send and record) is recognisable as one."""
    local = event_id if _SAFE_ID.match(event_id) else hashlib.sha256(event_id.encode()).hexdigest()[:40]
    recipient_hash = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
    return f"<{local}.{recipient_hash}@{domain}>"


def amount_text(amount: int, currency: str) -> str:
    """Minor units to text: ``2400, "EUR"`` → ``24.00 EUR``."""
    return f"{amount // 100}.{amount % 100:02d} {currency}"


def compose(
    event_type: str, event_id: str, data: dict[str, Any], *, domain: str, alert_email: str | None = None
) -> Mail | None:
    """The mail for an order or telemetry-alert payload, or ``None`` when there is nobody to write to."""
    if event_type == TELEMETRY_ALERT:
        return _alert(event_id, data, alert_email, domain)
    to = data.get("email")
    if not to:
        return None
    order_id = data["order_id"]
    total = amount_text(int(data["total"]), data["currency"])
    if event_type == ORDER_CONFIRMED:
        subject = f"Your order {order_id} is confirmed"
        text = f"Thank you for your order {order_id}.\n\nIt is confirmed; we charged {total}.\n"
    elif event_type == ORDER_CANCELLED:
        reason = _REASONS.get(data.get("reason", ""), data.get("reason", ""))
        subject = f"Your order {order_id} was cancelled"
        text = (
            f"We are sorry: your order {order_id} was cancelled because {reason}.\n\n"
            f"Nothing is charged: any payment of {total} is refunded.\n"
        )
    else:
        raise ValueError(f"no mail for event type {event_type!r}")
    return Mail(to, subject, text, message_id(event_id, to, domain), event_id, order_id)


def _alert(event_id: str, data: dict[str, Any], to: str | None, domain: str) -> Mail | None:
    """A telemetry alert goes to the operators' address (``ALERT_EMAIL``); raised and cleared are two mails."""
    if not to:
        return None
    device, metric, state = data["device_id"], data["metric"], data["state"]
    subject = f"Telemetry alert {state}: {device} {metric}"
    if state == "raised":
        text = (
            f"{metric} of device {device} is {data['direction']} its threshold {data['threshold']}: "
            f"{data['value']} at {data['ts']} (reading {data['reading_id']}).\n"
        )
    else:
        text = (
            f"{metric} of device {device} is back within its threshold {data['threshold']}: "
            f"{data['value']} at {data['ts']} (reading {data['reading_id']}).\n"
        )
    return Mail(to, subject, text, message_id(event_id, to, domain), event_id, order_id="")


def to_email_message(mail: Mail, mail_from: str, now: datetime | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Message-ID"] = mail.message_id
    message["Date"] = format_datetime(now or datetime.now(UTC))
    if mail.order_id:
        message["X-Order-Id"] = mail.order_id
    message.set_content(mail.text)
    return message


def sender_domain(mail_from: str) -> str:
    """The domain for Message-IDs: the part of ``MAIL_FROM`` after the ``@``."""
    return mail_from.rsplit("@", 1)[-1].strip(" >") or "localhost"
