"""Typed errors with stable codes, grouped by what the caller should do next.

Every error the hub raises descends from :class:`HubError` and carries a stable
``code`` (``CAREHUB-E...``). Callers act on the class, never on the message:

* :class:`RetryableError` - try again later (a peer is down, a lock is held).
* :class:`QuarantineError` - this one record is bad; keep it raw, park it with a
  reason, and carry on with the batch.
* :class:`ConfigError` - stop and fix the configuration; retrying will not help.
* :class:`PermanentDeliveryError` - a target refused an event for good.

At the edges one handler turns these into problem+json, an OperationOutcome, an
HL7 NAK or a CLI message with a non-zero exit code.
"""

from __future__ import annotations


class HubError(Exception):
    """Root of every Care Hub error; ``code`` is stable and documented."""

    code = "CAREHUB-E000"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class WriteSeamError(HubError):
    """Code changed a canonical row (entity, provenance, person index, outbox) outside the golden-record
    writer (hub.store.writer): a bug, never a data problem."""

    code = "CAREHUB-E010"


class ConfigError(HubError):
    """The configuration is wrong; stop and fix it."""

    code = "CAREHUB-E100"


class MappingError(ConfigError):
    """A mapping file is invalid; names the file, line and field."""

    code = "CAREHUB-E101"

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None,
        field: str | None = None,
    ) -> None:
        where = ":".join(str(p) for p in (file, line) if p is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field {field!r})" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")
        self.file, self.line, self.field = file, line, field


class RetryableError(HubError):
    """A transient failure: the same call may succeed later."""

    code = "CAREHUB-E200"
    http_status = 503


class SourceUnavailable(RetryableError):
    """A source or target system could not be reached."""

    code = "CAREHUB-E201"


class QuarantineError(HubError):
    """One record cannot be accepted; it is parked with ``reason`` and the batch goes on.

    ``reason`` is a stable upper-case code (``NHS_NUMBER_CHECK_DIGIT``,
    ``DATE_INVALID``, ``MISSING_FIELD``...) that operators filter and retry by.
    """

    code = "CAREHUB-E300"
    http_status = 422

    def __init__(self, reason: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


class PermanentDeliveryError(HubError):
    """A target refused an event for a reason retrying cannot fix."""

    code = "CAREHUB-E400"


class BadRequest(HubError):
    """The request itself cannot be read (a control character in its address, a value of the wrong shape)."""

    code = "CAREHUB-E400"
    http_status = 400


class NotFound(HubError):
    """The thing asked for does not exist (or the caller may not know it exists)."""

    code = "CAREHUB-E404"
    http_status = 404


class Conflict(HubError):
    """The request conflicts with the current state."""

    code = "CAREHUB-E409"
    http_status = 409


class Unauthenticated(HubError):
    """No bearer token, or one the hub cannot trust (bad signature, wrong issuer, expired)."""

    code = "CAREHUB-E401"
    http_status = 401


class Forbidden(HubError):
    """The caller is known but their role, purpose or relationship does not allow this.

    The message says which rule refused, never anything about the record itself.
    """

    code = "CAREHUB-E403"
    http_status = 403
