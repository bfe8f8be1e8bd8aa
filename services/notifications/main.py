"""notifications: mails the customer when an order is confirmed or cancelled, and the operators (``ALERT_EMAIL``)
when a telemetry alert is raised or cleared — at most once per event and recipient.

Email is outside Firestore, so the routes are not ``exactly_once``. Flow: compose the mail
(notifications/mail.py, pure) → take the ledger's in-progress lease for (event id, recipient) → skip if a
``sent_mail`` record exists → send (notifications/sender.py: SMTP, or the log when ``SMTP_HOST`` is unset) →
write the ``sent_mail`` record → complete the lease. A redelivery finds the lease completed (or held: 503,
retried later) and sends nothing. The Message-ID derives from the event id, so in the one window left — a crash
after the SMTP server took the mail but before the record — the second copy carries the same Message-ID and
mail clients can fold it into the first.

An event without an email address is acknowledged without effect.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from eventkit import Consumer, DomainEvent, HandlerContext
from eventkit.catalog import ORDER_CANCELLED, ORDER_CONFIRMED
from eventkit.catalog.telemetry import TELEMETRY_ALERT
from notifications.mail import compose, sender_domain, to_email_message
from notifications.sender import MailSettings, sender_from_settings

SENT_MAIL = "sent_mail"
log = logging.getLogger("notifications")

consumer = Consumer("notifications")
settings = MailSettings.from_env(os.environ)
sender = sender_from_settings(settings)


@consumer.on(ORDER_CONFIRMED, exactly_once=False)
def order_confirmed(event: DomainEvent, ctx: HandlerContext) -> None:
    notify(event, ctx)


@consumer.on(ORDER_CANCELLED, exactly_once=False)
def order_cancelled(event: DomainEvent, ctx: HandlerContext) -> None:
    notify(event, ctx)


@consumer.on(TELEMETRY_ALERT, exactly_once=False)
def telemetry_alert(event: DomainEvent, ctx: HandlerContext) -> None:
    notify(event, ctx)


def notify(event: DomainEvent, ctx: HandlerContext) -> None:
    mail = compose(
        event.type,
        event.id,
        event.data_json(),
        domain=sender_domain(settings.mail_from),
        alert_email=settings.alert_email,
    )
    if mail is None:
        log.info("no recipient for this event: nothing to send")
        return
    key = f"{event.id}:{mail.to.lower()}"
    record = ctx.db.collection(SENT_MAIL).document(quote(key, safe="@"))
    with ctx.side_effect_once(key, identity=event.data_json()) as run:
        if not run or record.get().exists:
            return
        sender.send(to_email_message(mail, settings.mail_from))
        record.create(
            {
                "event_id": event.id,
                "event_type": event.type,
                "order_id": mail.order_id,
                "to": mail.to,
                "subject": mail.subject,
                "message_id": mail.message_id,
                "sender": sender.name,
                "sent_at": datetime.now(UTC),
            }
        )
    log.info("mail sent", extra={"fields": {"message_id": mail.message_id, "sender": sender.name}})


def handle_event(request: Any) -> tuple[str, int, dict[str, str]]:
    """functions-framework target (signature type http): every delivery form goes through eventkit."""
    return consumer.handle(request)
