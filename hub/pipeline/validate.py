"""Stage 2, validate: each mapped document against the canonical model; a bad one is quarantined with a
stable reason code and a readable message (never the value it refused)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from hub.errors import QuarantineError
from hub.model import ENTITIES, Canonical
from hub.model.validators import SAFE_TEXT, SAFE_TEXT_MESSAGE
from hub.pipeline.record import Record


def validate(items: list[Record]) -> None:
    """Each mapped record's model (``item.model``), or its quarantine reason."""
    for item in items:
        if item.error is not None or not item.entity_type:
            continue
        cls = ENTITIES[item.entity_type]
        try:
            item.model = cls.model_validate(item.document)
        except ValidationError as exc:
            item.error = quarantine_reason(exc)


def canonical(model: Canonical) -> dict[str, Any]:
    """The document the store keeps for a validated model."""
    return model.__pydantic_serializer__.to_python(  # model_dump without its wrapper
        model, mode="json", exclude_none=True, exclude=_ID_ONLY)


_ID_ONLY = {"id"}  # what the canonical document leaves out (the store keeps the id beside it)


_REASONS = (
    ("modulus-11", "NHS_NUMBER_CHECK_DIGIT"),
    ("NHS number", "NHS_NUMBER_INVALID"),
    ("postcode", "POSTCODE_INVALID"),
    ("in the future", "DATE_IN_FUTURE"),
    ("before start", "DATES_OUT_OF_ORDER"),
    ("before birth", "DATES_OUT_OF_ORDER"),
    ("approval date", "APPROVAL_INCOMPLETE"),
)


def _error_text(error: Any) -> str:
    """What a validation error says, without the value it refused (a name, a control character)."""
    if error["type"] == "string_pattern_mismatch" and (error.get("ctx") or {}).get("pattern") == SAFE_TEXT:
        return SAFE_TEXT_MESSAGE
    return str(error["msg"]).removeprefix("Value error, ")


def quarantine_reason(exc: ValidationError) -> QuarantineError:
    """Turn a pydantic validation error into a stable reason code and a readable message."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    message = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {_error_text(e)}" for e in exc.errors()
    )
    kind = first["type"]
    if kind == "missing":
        reason = "MISSING_FIELD"
    elif kind in ("string_too_long", "too_long"):
        reason = "TOO_LONG"
    elif kind == "string_pattern_mismatch" and (first.get("ctx") or {}).get("pattern") == SAFE_TEXT:
        reason = "CONTROL_CHARACTER"
    elif kind in ("date_from_datetime_parsing", "date_parsing", "date_from_datetime_inexact", "datetime_parsing"):
        reason = "DATE_INVALID"
    elif kind in ("enum", "literal_error"):
        reason = "CODE_INVALID"
    else:
        text = str(first["msg"])
        reason = next((code for needle, code in _REASONS if needle in text), "INVALID_VALUE")
    return QuarantineError(reason, message, field=loc or None)
