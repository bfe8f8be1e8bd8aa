"""Notifications' pure mail composition and its configuration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eventkit import ConfigError
from eventkit.catalog import ORDER_CANCELLED, ORDER_CONFIRMED, ORDER_PLACED
from notifications.mail import amount_text, compose, message_id, sender_domain, to_email_message
from notifications.sender import LogSender, MailSettings, SmtpSender, sender_from_settings

CONFIRMED = {"order_id": "o-7", "customer_id": "c-1", "email": "ana@example.com", "total": 2400, "currency": "EUR"}
CANCELLED = {**CONFIRMED, "reason": "out_of_stock"}


def test_confirmed_order_mail_names_the_order_and_the_total() -> None:
    mail = compose(ORDER_CONFIRMED, "evt-1", CONFIRMED, domain="example.com")

    assert mail is not None
    assert mail.to == "ana@example.com"
    assert mail.subject == "Your order o-7 is confirmed"
    assert "24.00 EUR" in mail.text


def test_cancelled_order_mail_explains_the_reason_in_words() -> None:
    mail = compose(ORDER_CANCELLED, "evt-2", CANCELLED, domain="example.com")

    assert mail is not None
    assert mail.subject == "Your order o-7 was cancelled"
    assert "some items are out of stock" in mail.text


def test_unknown_cancel_reason_is_shown_as_given() -> None:
    mail = compose(ORDER_CANCELLED, "evt-2", {**CANCELLED, "reason": "fraud check failed"}, domain="example.com")

    assert mail is not None
    assert "because fraud check failed" in mail.text


def test_event_without_email_is_no_mail() -> None:
    data = {key: value for key, value in CONFIRMED.items() if key != "email"}

    assert compose(ORDER_CONFIRMED, "evt-3", data, domain="example.com") is None


def test_other_event_types_are_not_mailed() -> None:
    with pytest.raises(ValueError, match=ORDER_PLACED):
        compose(ORDER_PLACED, "evt-4", CONFIRMED, domain="example.com")


def test_message_id_is_derived_from_the_event_id_and_recipient() -> None:
    first = message_id("evt-1", "ana@example.com", "example.com")

    assert first == message_id("evt-1", "ANA@example.com", "example.com")
    assert first.startswith("<evt-1.") and first.endswith("@example.com>")
    assert first != message_id("evt-2", "ana@example.com", "example.com")
    assert first != message_id("evt-1", "bob@example.com", "example.com")


def test_event_id_unfit_for_a_message_id_is_hashed() -> None:
    odd = message_id("a b<c>@d", "ana@example.com", "example.com")

    assert " " not in odd and odd.count("@") == 1 and odd.count("<") == 1


def test_email_message_carries_the_derived_message_id() -> None:
    mail = compose(ORDER_CONFIRMED, "evt-1", CONFIRMED, domain="example.com")
    assert mail is not None

    message = to_email_message(mail, "shop@example.com", now=datetime(2026, 1, 2, tzinfo=UTC))

    assert message["Message-ID"] == mail.message_id
    assert message["From"] == "shop@example.com"
    assert message["To"] == "ana@example.com"
    assert message["X-Order-Id"] == "o-7"
    assert "24.00 EUR" in message.get_content()


def test_amounts_are_minor_units() -> None:
    assert amount_text(5, "EUR") == "0.05 EUR"
    assert amount_text(123456, "USD") == "1234.56 USD"


def test_message_id_domain_comes_from_mail_from() -> None:
    assert sender_domain("Shop <orders@shop.example>") == "shop.example"


def test_settings_default_to_log_only_sender() -> None:
    settings = MailSettings.from_env({})

    assert settings.mail_from == "shop@example.com"
    assert isinstance(sender_from_settings(settings), LogSender)


def test_smtp_host_selects_the_smtp_sender() -> None:
    sender = sender_from_settings(MailSettings.from_env({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": "2525"}))

    assert isinstance(sender, SmtpSender)
    assert (sender.host, sender.port) == ("127.0.0.1", 2525)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SMTP_PORT": "smtp"}, "SMTP_PORT"),
        ({"SMTP_PORT": "70000"}, "SMTP_PORT"),
        ({"SMTP_TIMEOUT_SECONDS": "0"}, "SMTP_TIMEOUT"),
    ],
)
def test_bad_mail_settings_name_their_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        MailSettings.from_env(env)


ALERT = {
    "device_id": "dev-1",
    "metric": "temperature",
    "state": "raised",
    "direction": "above",
    "threshold": 30.0,
    "value": 31.5,
    "reading_id": "r2",
    "ts": "2026-11-27T08:00:00Z",
}


def test_a_telemetry_alert_mails_the_operators_address_and_no_alert_address_means_no_mail() -> None:
    from eventkit.catalog.telemetry import TELEMETRY_ALERT

    raised = compose(TELEMETRY_ALERT, "evt-1", ALERT, domain="example.com", alert_email="ops@example.com")
    cleared = compose(
        TELEMETRY_ALERT,
        "evt-2",
        {**ALERT, "state": "cleared", "value": 28.0},
        domain="example.com",
        alert_email="ops@example.com",
    )

    assert raised is not None and cleared is not None
    assert raised.to == "ops@example.com"
    assert raised.subject == "Telemetry alert raised: dev-1 temperature"
    assert "above its threshold 30.0: 31.5" in raised.text
    assert "back within its threshold" in cleared.text
    assert raised.message_id != cleared.message_id
    assert "X-Order-Id" not in to_email_message(raised, "shop@example.com")
    assert compose(TELEMETRY_ALERT, "evt-1", ALERT, domain="example.com", alert_email=None) is None
