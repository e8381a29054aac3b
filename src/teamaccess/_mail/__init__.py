"""Mail: the message builder, templates and mailers (SMTP loads only when used)."""
