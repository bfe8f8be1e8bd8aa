"""The sender interface and its two implementations: SMTP (standard library ``smtplib``) and log-only.

Configuration (checked at start-up): ``SMTP_HOST`` (unset → log-only sender), ``SMTP_PORT`` (default 25),
``MAIL_FROM`` (default ``shop@example.com``), ``SMTP_TIMEOUT_SECONDS`` (default 10; bounded well below the push
subscription's ack deadline).

SMTP replies decide what a failure means: a 5xx reply (mailbox unknown, message refused) will not change on
retry — :class:`eventkit.PermanentError`, recorded and acknowledged; a 4xx reply, a refused connection or a
timeout — :class:`eventkit.RetryableError`, so Pub/Sub redelivers.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from eventkit import ConfigError, PermanentError, RetryableError

DEFAULT_MAIL_FROM = "shop@example.com"
DEFAULT_ALERT_EMAIL = "operations@example.com"
log = logging.getLogger("notifications.sender")


class Sender(Protocol):
    name: str

    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class MailSettings:
    mail_from: str = DEFAULT_MAIL_FROM
    smtp_host: str | None = None
    smtp_port: int = 25
    timeout: float = 10.0
    alert_email: str | None = DEFAULT_ALERT_EMAIL  # where telemetry alerts go; empty ALERT_EMAIL turns them off

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MailSettings:
        return cls(
            mail_from=environ.get("MAIL_FROM") or DEFAULT_MAIL_FROM,
            smtp_host=environ.get("SMTP_HOST") or None,
            smtp_port=_port(environ.get("SMTP_PORT") or "25"),
            timeout=_seconds(environ.get("SMTP_TIMEOUT_SECONDS") or "10"),
            alert_email=environ.get("ALERT_EMAIL", DEFAULT_ALERT_EMAIL) or None,
        )


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"SMTP_PORT={raw!r} must be a port number (1-65535)")
    return int(raw)


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= 60:
        raise ConfigError(f"SMTP_TIMEOUT_SECONDS={raw!r} must be a number of seconds in (0, 60]")
    return value


class SmtpSender:
    name = "smtp"

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout

    def send(self, message: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code = min(code for code, _ in exc.recipients.values())
            raise _failure(code, f"SMTP {self.host}:{self.port} refused the recipients {exc.recipients}") from exc
        except smtplib.SMTPResponseException as exc:
            error = f"SMTP {self.host}:{self.port} answered {exc.smtp_code} {exc.smtp_error!r}"
            raise _failure(exc.smtp_code, error) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise RetryableError(f"SMTP {self.host}:{self.port} unavailable: {exc}") from exc


def _failure(smtp_code: int, error: str) -> Exception:
    """5xx: the server will refuse this mail again (permanent); 4xx: try later (retryable)."""
    return PermanentError(error, reason="mail_refused") if smtp_code >= 500 else RetryableError(error)


class LogSender:
    """For environments without a mail relay: the mail is written to the log (one structured line) instead."""

    name = "log"

    def send(self, message: EmailMessage) -> None:
        log.info(
            "mail (log-only sender)",
            extra={
                "fields": {
                    "to": message["To"],
                    "subject": message["Subject"],
                    "message_id": message["Message-ID"],
                }
            },
        )


def sender_from_settings(settings: MailSettings) -> Sender:
    if settings.smtp_host:
        return SmtpSender(settings.smtp_host, settings.smtp_port, settings.timeout)
    return LogSender()
