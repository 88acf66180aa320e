"""One error tree, classified by what the caller should do next.

::

    KizunaError
    ├── TransientError        retry later (429, 5xx, timeouts); carries retry_after seconds
    ├── FatalError            stop this stream and tell a person why
    │   ├── AuthError         credentials expired, revoked or wrong
    │   ├── ConfigError       the workspace file is wrong: names file, field and fix
    │   └── QuotaError        a daily quota is spent; resume next run
    ├── ResyncRequired        the source's cursor is gone (Gmail 404, Calendar 410, ...)
    ├── LeaseHeld             another run is doing this unit of work now: wait or try later
    ├── SendInDoubt           a message went past the point of no return; nobody can say
    │                         whether it was delivered: ask the channel, else hold it
    └── BadRecord             one record is unusable: quarantine it, keep going

Prefect retries only ``TransientError``; every other error fails or skips without retry.
Messages never contain secrets: callers pass names of accounts, never tokens.
"""

from __future__ import annotations


class KizunaError(Exception):
    """Root of every error Kizuna raises on purpose."""


class TransientError(KizunaError):
    """A failure that goes away on its own; retry after ``retry_after`` seconds if given."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(KizunaError):
    """A failure that retrying cannot fix; a person must act."""


class AuthError(FatalError):
    """Credentials were refused; the message names the account and what to renew."""


class ConfigError(FatalError):
    """The workspace configuration is wrong.

    ``str()`` gives ``file: field: problem. fix`` so an admin can act without reading code.
    """

    def __init__(self, problem: str, *, file: str = "", field: str = "", fix: str = "") -> None:
        self.file = file
        self.field = field
        self.problem = problem
        self.fix = fix
        parts = [p for p in (file, field) if p]
        text = ": ".join([*parts, problem])
        if fix:
            text = f"{text}. Fix: {fix}"
        super().__init__(text)


class QuotaError(FatalError):
    """A daily or account quota is exhausted; the stream stops cleanly and resumes next run."""


class ResyncRequired(KizunaError):
    """The source no longer accepts our cursor; drop it and sync the stream from scratch."""


class LeaseHeld(KizunaError):
    """Another run holds this unit of work (a stream, a resolution, a campaign).

    Not retried by Prefect and not a failure of the run: the holder is doing the work. The
    message says who holds it and since when, e.g. ``stream crm/Contact is being synced by
    run 4f2a… on host-1 since 10:02 JST; try again later``.
    """

    def __init__(self, message: str, *, unit: str, run_id: str) -> None:
        super().__init__(message)
        self.unit = unit
        self.run_id = run_id


class SendInDoubt(KizunaError):
    """The connection broke after the message was handed over (SMTP after DATA).

    Retrying could deliver a second copy and giving up could drop the only one, so the caller
    asks the channel (``was_sent``) and otherwise holds the recipient for a person to decide.
    """


class BadRecord(KizunaError):
    """One record cannot be used. It is quarantined with this reason; the batch goes on."""

    def __init__(self, reason: str, *, source_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.source_id = source_id


def from_http_status(
    status: int, message: str, *, retry_after: float | None = None, reason: str = ""
) -> KizunaError:
    """Classify an HTTP failure; the one place status codes become Kizuna errors.

    ``reason`` is the API's own error reason (``rateLimitExceeded``, ``REQUEST_LIMIT_EXCEEDED``)
    because several APIs signal throttling with 403 rather than 429.
    """
    rate_reasons = {"ratelimitexceeded", "userratelimitexceeded", "backenderror"}
    quota_reasons = {"request_limit_exceeded", "dailylimitexceeded", "quotaexceeded"}
    r = reason.lower()
    if status == 429 or (status == 403 and r in rate_reasons):
        return TransientError(f"throttled ({status}): {message}", retry_after=retry_after)
    if status == 403 and r in quota_reasons:
        return QuotaError(f"quota exhausted ({status}): {message}")
    if status in (404, 410) and r in {"fullsyncrequired", "syncstatenotfound", "stale"}:
        return ResyncRequired(f"cursor expired ({status}): {message}")
    if status == 401:
        return AuthError(f"credentials refused (401): {message}")
    if status == 403:
        return AuthError(f"access forbidden (403): {message}")
    if status in (408, 425) or status >= 500:
        return TransientError(f"server error ({status}): {message}", retry_after=retry_after)
    return FatalError(f"request failed ({status}): {message}")
