"""Money and units at the edges: integer pence and hundredths in the store, Decimal and 2-place strings out.

Never float: every amount is computed in Decimal and rounded half up to the penny once.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from hub.errors import QuarantineError

PENNY = Decimal("0.01")


def to_pence(value: Decimal) -> int:
    """Pounds (Decimal) to integer pence, rounded half up."""
    return int((value / PENNY).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def pounds(pence: int) -> Decimal:
    """Integer pence as pounds, exactly."""
    return (Decimal(pence) * PENNY).quantize(PENNY)


def money(pence: int | None) -> str | None:
    """Integer pence as a decimal string with two places ("1234.50", "-3.07"): integer arithmetic, exact."""
    if pence is None:
        return None
    whole, part = divmod(abs(pence), 100)
    return f"{'-' if pence < 0 else ''}{whole}.{part:02d}"


def hundredths(x100: int) -> str:
    """Integer hundredths (units per week) as a decimal string with two places."""
    return money(x100) or "0.00"


def parse_amount(text: str, field: str) -> Decimal:
    """A decimal amount from text, with at most two places; QuarantineError otherwise."""
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError) as exc:
        raise QuarantineError("AMOUNT_INVALID", f"{field}: {text!r} is not a decimal amount", field=field) from exc
    if not value.is_finite() or value != value.quantize(PENNY):
        raise QuarantineError("AMOUNT_INVALID", f"{field}: {text!r} must have at most two decimal places",
                              field=field)
    return value
