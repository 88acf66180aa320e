"""Push fixtures: seeded campaigns, the aiosmtpd server, and the worker scripts overlap and
crash tests start in other processes."""
