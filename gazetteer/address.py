"""A BS7666 address (SAO, PAO, street, locality, town, postcode) and how a letter shows it.

BS7666 splits an address into the secondary addressable object (SAO: the unit
within a building, e.g. ``FLAT 2``) and the primary addressable object (PAO:
the building or land, e.g. ``14A`` or ``ROSE COTTAGE``), each with start and
end numbers, suffixes and text. :class:`Bs7666Address` renders that as the
lines of a postal address and converts it to the hub's canonical
:class:`hub.model.Address`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hub.model import Address
from hub.model.validators import normalise_postcode


@dataclass(frozen=True, slots=True)
class AddressableObject:
    """An SAO or a PAO: start and end numbers with suffixes, and text."""

    start_number: int | None = None
    start_suffix: str | None = None
    end_number: int | None = None
    end_suffix: str | None = None
    text: str | None = None

    @property
    def numbers(self) -> str:
        """The numbers as written on a letter: ``14``, ``14A``, ``12-14``, ``12A-12C``."""
        if self.start_number is None:
            return ""
        start = f"{self.start_number}{self.start_suffix or ''}"
        if self.end_number is None:
            return start
        return f"{start}-{self.end_number}{self.end_suffix or ''}"

    @property
    def is_empty(self) -> bool:
        """True when the object has neither numbers nor text."""
        return self.start_number is None and not self.text

    def render(self) -> str:
        """Text and numbers on one line, text first (``FLAT 2``, ``UNIT 3``, ``2``)."""
        return " ".join(part for part in (self.text or "", self.numbers) if part)


_WORD = re.compile(r"[A-Za-z][A-Za-z']*")


def letter_case(line: str) -> str:
    """Capitalise each word (``HIGH STREET`` -> ``High Street``); numbers like ``14A`` stay."""
    return _WORD.sub(lambda m: m.group(0)[0].upper() + m.group(0)[1:].lower(), line)


@dataclass(frozen=True)
class Bs7666Address:
    """A property's address in BS7666 parts, with its UPRN and its street's USRN."""

    sao: AddressableObject = field(default_factory=AddressableObject)
    pao: AddressableObject = field(default_factory=AddressableObject)
    street: str | None = None
    locality: str | None = None
    town: str | None = None
    postcode: str | None = None
    organisation: str | None = None
    uprn: str | None = None
    usrn: str | None = None

    def lines(self) -> list[str]:
        """The lines of the postal address, as a letter needs them.

        Organisation, then the unit (SAO), then the building name, then the
        building number with the street, then the locality (when it is not the
        town), the post town in capitals and the postcode. Empty lines are left out.
        """
        lines: list[str] = []
        if self.organisation:
            lines.append(letter_case(self.organisation))
        if not self.sao.is_empty:
            lines.append(letter_case(self.sao.render()))
        if self.pao.text:
            lines.append(letter_case(self.pao.text))
        street_line = " ".join(p for p in (self.pao.numbers, letter_case(self.street or "")) if p)
        if street_line:
            lines.append(street_line)
        if self.locality and (self.locality or "").upper() != (self.town or "").upper():
            lines.append(letter_case(self.locality))
        if self.town:
            lines.append(self.town.upper())
        if self.postcode:
            lines.append(self.postcode.upper())
        return lines

    def single_line(self) -> str:
        """The postal address on one line, comma separated."""
        return ", ".join(self.lines())

    def to_canonical(self, text: str | None = None, use: str = "home") -> Address:
        """The hub's canonical Address; ``text`` (what the source said) is kept as given."""
        try:
            postcode = normalise_postcode(self.postcode) if self.postcode else None
        except ValueError:
            postcode = None
        return Address(
            use=use,
            text=text,
            sao_text=self.sao.render() or None,
            pao_start_number=self.pao.start_number,
            pao_start_suffix=self.pao.start_suffix,
            pao_end_number=self.pao.end_number,
            pao_text=self.pao.text,
            street=self.street,
            locality=self.locality,
            town=self.town,
            postcode=postcode,
            uprn=self.uprn,
            usrn=self.usrn,
        )
