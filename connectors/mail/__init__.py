"""Mailboxes in and messages out: IMAP, the Gmail API and Microsoft Graph as readers; SMTP,
Gmail, Graph, the outbox folder and Slack as send channels; ``compose`` builds the message.
"""

__all__ = [
    "compose",
    "gmail",
    "gmail_send",
    "graph",
    "graph_send",
    "imap",
    "outbox",
    "slack_send",
    "smtp_send",
]
