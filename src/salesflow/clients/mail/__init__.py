"""Outgoing e-mail: SMTP (aiosmtplib) or, without `SMTP_HOST`, `.eml` files in `OUTBOX_DIR`."""
