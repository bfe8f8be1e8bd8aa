"""The notifications service's code: composing a mail (pure) and sending it (SMTP, or the log)."""
