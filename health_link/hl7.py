"""HL7 v2 messages as the hub reads and answers them: decoding, parsing, field access, ACKs.

Parsing on the ingest path is python-hl7's ``hl7.parse``, many times faster than
hl7apy's ``parse_message`` or ``parse_segments`` (figures: docs/health-link.md).
Before parsing, the bytes are decoded by the character set ``MSH-18`` names and
CR, LF and CRLF segment endings are all made CR. Fields are read through
:class:`Hl7Message`, which decodes the escape sequences (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``
and hex). Z-segments are parsed like any other and kept in the raw text.

Acknowledgements are written here as plain ER7 text (far cheaper than building
one with hl7apy or python-hl7); hl7apy
checks them, and any message, on demand with :func:`conformance_problems`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import hl7

from hub.errors import HubError

START, END = b"\x0b", b"\x1c\x0d"
SUPPORTED_VERSIONS = frozenset({"2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1"})
PROCESSING_IDS = frozenset({"P", "T", "D"})
LOCAL_TIME = ZoneInfo("Europe/London")

# MSH-18 values (HL7 table 0211) and what Python calls them.
CHARSETS = {
    "": "utf-8", "ASCII": "ascii", "8859/1": "latin-1", "8859/2": "iso8859-2", "8859/15": "iso8859-15",
    "UNICODE": "utf-8", "UNICODE UTF-8": "utf-8", "UTF-8": "utf-8", "UNICODE UTF-16": "utf-16",
    "WINDOWS-1252": "cp1252", "CP1252": "cp1252",
}

# HL7 table 0357: the error codes an ERR segment carries.
ERROR_TEXT = {
    100: "Segment sequence error", 101: "Required field missing", 102: "Data type error",
    103: "Table value not found", 200: "Unsupported message type", 201: "Unsupported event code",
    202: "Unsupported processing id", 203: "Unsupported version id", 204: "Unknown key identifier",
    205: "Duplicate key identifier", 206: "Application record locked", 207: "Application internal error",
}


class Hl7Error(HubError):
    """A message the hub cannot take, with the HL7 answer it earns.

    ``answer`` is ``AR`` (cannot be parsed, or a type, version or processing id
    the hub does not take) or ``AE`` (parsed, but cannot be applied); ``hl7_code``
    is from HL7 table 0357 and ``location`` says where (``PID^1^3``).
    """

    code = "CAREHUB-E310"

    def __init__(self, answer: str, hl7_code: int, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.answer, self.hl7_code, self.location = answer, hl7_code, location

    def __reduce__(self) -> tuple[Any, ...]:
        return Hl7Error, (self.answer, self.hl7_code, self.message, self.location)


class Hl7ParseError(Hl7Error):
    """The bytes are not an HL7 v2 message the hub can read: answered AR."""

    code = "CAREHUB-E311"

    def __init__(self, message: str, hl7_code: int = 100, location: str | None = None) -> None:
        super().__init__("AR", hl7_code, message, location)

    def __reduce__(self) -> tuple[Any, ...]:
        return Hl7ParseError, (self.message, self.hl7_code, self.location)


@dataclass(frozen=True, slots=True)
class Header:
    """What MSH says: who sent the message, what it is, its id, version and character set."""

    field_separator: str
    encoding_characters: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    sent_at: str
    message_code: str
    trigger: str
    structure: str
    control_id: str
    processing_id: str
    version: str
    charset: str
    accept_ack: str = ""  # MSH-15: AL, NE, ER, SU; empty (with MSH-16) means original mode
    application_ack: str = ""  # MSH-16

    @property
    def enhanced(self) -> bool:
        """True when the sender asked for enhanced-mode acknowledgement (MSH-15 or MSH-16 valued)."""
        return bool(self.accept_ack or self.application_ack)

    @property
    def message_type(self) -> str:
        """``ADT^A01`` style."""
        return f"{self.message_code}^{self.trigger}" if self.trigger else self.message_code


Components = list[list[str]]


class Hl7Message:
    """A parsed HL7 v2 message; fields are read 1-based, the way the standard numbers them."""

    __slots__ = ("header", "parsed", "text", "_segments", "_fields")

    def __init__(self, text: str, parsed: hl7.Message, header: Header) -> None:
        self.text, self.parsed, self.header = text, parsed, header
        self._segments: dict[str, list[Any]] = {}
        self._fields: dict[tuple[str, int, int], list[Components]] = {}
        for segment in parsed:
            self._segments.setdefault(str(segment[0][0]), []).append(segment)

    def has(self, segment: str) -> bool:
        """True when the message holds at least one ``segment``."""
        return segment in self._segments

    def segment_names(self) -> list[str]:
        """The segment ids in order of appearance (Z-segments included)."""
        return [str(s[0][0]) for s in self.parsed]

    def repetitions(self, segment: str, field: int, occurrence: int = 1) -> list[Components]:
        """Every repetition of a field, each as components of subcomponents, escapes decoded."""
        key = (segment, field, occurrence)
        cached = self._fields.get(key)
        if cached is None:
            cached = self._fields[key] = self._read(segment, field, occurrence)
        return cached

    def _read(self, segment: str, field: int, occurrence: int) -> list[Components]:
        found = self._segments.get(segment)
        if not found or len(found) < occurrence:
            return []
        seg = found[occurrence - 1]
        if field >= len(seg):
            return []
        value = seg[field]
        if segment == "MSH" and field <= 2:
            return [[[str(value[0])]]]
        unescape = self._unescape
        out: list[Components] = []
        for rep in value:
            if isinstance(rep, str):
                if rep:
                    out.append([[unescape(rep)]])
            else:
                out.append([[unescape(sub) for sub in comp] if isinstance(comp, list) else [unescape(comp)]
                            for comp in rep])
        return out

    def value(self, segment: str, field: int, component: int = 1, repetition: int = 1, subcomponent: int = 1,
              occurrence: int = 1) -> str:
        """One value (empty when absent)."""
        reps = self.repetitions(segment, field, occurrence)
        if len(reps) < repetition:
            return ""
        comps = reps[repetition - 1]
        if len(comps) < component:
            return ""
        subs = comps[component - 1]
        return subs[subcomponent - 1] if len(subs) >= subcomponent else ""

    def _unescape(self, value: str) -> str:
        if "\\" not in value:
            return value
        result: str = self.parsed.unescape(value)
        return result


class BrokenFrame(bytes):
    """A frame that did not arrive whole: it lost its end block (the next one began first), was cut at the size
    limit or by the connection closing, or had no start block. Kept raw and refused (AR)."""


class StrayBytes(BrokenFrame):
    """Bytes between frames, outside any start block: kept raw, but not answered (no sender waits for them, and
    an answer would put the sender's ACKs out of step)."""


def frames(buffer: bytearray) -> tuple[list[bytes], int]:
    """Complete MLLP frames at the front of ``buffer`` and how many bytes they (and what came before them) used.

    Whatever came before a frame's start block is returned too, as a :class:`BrokenFrame`, unless it is only
    whitespace: a frame whose end block was lost is never dropped without trace.
    """
    out: list[bytes] = []
    used = 0
    while True:
        end = buffer.find(END, used)
        if end < 0:
            return out, used
        start = buffer.rfind(START, used, end)
        before = bytes(buffer[used:start]) if start >= 0 else b""
        for n, piece in enumerate(before.split(START)):
            if piece.strip(b"\r\n \t\x00"):
                out.append(BrokenFrame(piece) if n else StrayBytes(piece))
        out.append(bytes(buffer[start + 1:end]) if start >= 0 else BrokenFrame(buffer[used:end]))
        used = end + len(END)


def frame(message: str | bytes, encoding: str = "utf-8") -> bytes:
    """One message in MLLP framing."""
    body = message.encode(encoding) if isinstance(message, str) else message
    return START + body + END


def _header_fields(raw: bytes) -> tuple[str, list[bytes]]:
    first = re.split(rb"[\r\n]", raw.lstrip(b"\r\n \t"), maxsplit=1)[0]
    if not first.startswith(b"MSH") or len(first) < 8:
        raise Hl7ParseError("the message does not begin with an MSH segment")
    separator = first[3:4]
    return separator.decode("latin-1"), first.split(separator)


def decode(raw: bytes) -> tuple[str, str]:
    """The message as text (by MSH-18; UTF-8, then Windows-1252, when none is named) and the codec used.

    Every segment ends with CR afterwards, whatever the sender used.
    """
    _, fields = _header_fields(raw)
    named = fields[17].decode("latin-1").strip().upper() if len(fields) > 17 else ""
    named = named.split("^")[0].split("~")[0]
    codec = CHARSETS.get(named)
    if codec is None:
        raise Hl7ParseError(f"MSH-18 names a character set the hub does not read ({named[:20]!r})", 102, "MSH^1^18")
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        if named:
            raise Hl7ParseError(f"the message is not valid {named}", 102, "MSH^1^18") from exc
        codec = "cp1252"
        text = raw.decode(codec, errors="replace")
    text = text.strip("\x00 \t\r\n").replace("\r\n", "\r").replace("\n", "\r")
    return text, codec


def read_header(raw: bytes) -> Header | None:
    """MSH read on its own, for answering a message whose body cannot be parsed (None when there is no MSH)."""
    try:
        separator, fields = _header_fields(raw)
    except Hl7ParseError:
        return None
    values = [f.decode("latin-1") for f in fields] + [""] * 20
    component = values[1][:1] or "^"

    def part(n: int, c: int = 0) -> str:
        pieces = values[n - 1].split(component)
        return pieces[c] if len(pieces) > c else ""

    return Header(separator, values[1], part(3), part(4), part(5), part(6), part(7), part(9), part(9, 1),
                  part(9, 2), part(10), part(11), part(12), "utf-8", part(15).strip().upper(),
                  part(16).strip().upper())


def parse(raw: bytes) -> Hl7Message:
    """Decode and parse one message; :class:`Hl7ParseError` when it cannot be read."""
    text, codec = decode(raw)
    try:
        parsed = hl7.parse(text)
    except Exception as exc:  # python-hl7 raises several kinds; all mean the same to a sender
        raise Hl7ParseError(f"the message cannot be parsed ({type(exc).__name__})") from exc
    for segment in parsed:
        name = str(segment[0][0]) if segment and segment[0] else ""
        if not re.fullmatch(r"[A-Z][A-Z0-9]{2}", name):
            raise Hl7ParseError(f"a segment has no valid id ({name[:8]!r})")
    message = Hl7Message(text, parsed, _EMPTY_HEADER)
    message.header = Header(
        field_separator=text[3], encoding_characters=message.value("MSH", 2),
        sending_application=message.value("MSH", 3), sending_facility=message.value("MSH", 4),
        receiving_application=message.value("MSH", 5), receiving_facility=message.value("MSH", 6),
        sent_at=message.value("MSH", 7), message_code=message.value("MSH", 9, 1),
        trigger=message.value("MSH", 9, 2), structure=message.value("MSH", 9, 3),
        control_id=message.value("MSH", 10), processing_id=message.value("MSH", 11),
        version=message.value("MSH", 12), charset=codec, accept_ack=message.value("MSH", 15).strip().upper(),
        application_ack=message.value("MSH", 16).strip().upper(),
    )
    return message


_EMPTY_HEADER = Header(*([""] * 14))


def check_header(header: Header) -> None:
    """Refuse (AR) what the hub does not take: no control id, an unknown version or processing id."""
    if not header.control_id:
        raise Hl7ParseError("MSH-10 (message control id) is empty", 101, "MSH^1^10")
    if header.version not in SUPPORTED_VERSIONS:
        raise Hl7ParseError(f"version {header.version[:10]!r} is not taken (2.2 to 2.5.1)", 203, "MSH^1^12")
    if header.processing_id[:1] not in PROCESSING_IDS:
        raise Hl7ParseError(f"processing id {header.processing_id[:3]!r} is not P, T or D", 202, "MSH^1^11")


def parse_time(value: str) -> datetime | None:
    """An HL7 TS/DTM (YYYYMMDD[HHMM[SS[.S]]][+/-ZZZZ]) as an aware UTC time; local UK time when no zone."""
    value = value.strip()
    match = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})(?:T?(\d{2}):?(\d{2})?:?(\d{2})?(?:\.\d+)?)?([+-]\d{4})?", value)
    if not match:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    if zone:
        sign = 1 if zone[0] == "+" else -1
        offset = sign * (int(zone[1:3]) * 60 + int(zone[3:5]))
        return moment.replace(tzinfo=UTC) - timedelta(minutes=offset)
    return moment.replace(tzinfo=LOCAL_TIME).astimezone(UTC)


def parse_date(value: str) -> date | None:
    """An HL7 date (YYYYMMDD, or the ISO form some feeds send); None when it is not one."""
    match = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2}).*", value.strip())
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def escape(value: str) -> str:
    """A value escaped for the standard separators ``|^~\\&``."""
    return (value.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\")
            .replace("~", "\\R\\").replace("\r", " ").replace("\n", " "))


_ack_ids = itertools.count(1)
MAX_CONTROL_ID = 20  # MSH-10 is ST(20) in every version the hub takes
TWO_PART_TYPES = frozenset({"2.2", "2.3"})  # MSH-9 gained its third component (message structure) in 2.3.1


def ack_type(version: str, trigger: str) -> str:
    """MSH-9 of an ACK as ``version`` defines it: ``ACK^A01`` up to 2.3, ``ACK^A01^ACK`` from 2.3.1."""
    if not trigger:
        return "ACK"
    return f"ACK^{trigger}" if version in TWO_PART_TYPES else f"ACK^{trigger}^ACK"


def build_ack(header: Header | None, answer: str, text: str = "", error: Hl7Error | None = None, *,
              application: str = "CAREHUB", facility: str = "COUNCIL") -> str:
    """An ACK: MSH, MSA (MSA-2 echoes MSH-10) and, for AE/AR (CE/CR), an ERR saying why.

    ``answer`` is the original-mode AA/AE/AR or the enhanced-mode commit code CA/CE/CR.
    """
    moment = datetime.now(LOCAL_TIME)
    now = moment.strftime("%Y%m%d%H%M%S")
    version = header.version if header and header.version in SUPPORTED_VERSIONS else "2.5.1"
    trigger = escape(header.trigger) if header else ""
    control = f"A{moment.strftime('%y%m%d%H%M%S')}{next(_ack_ids) % 1_000_000:06d}"[:MAX_CONTROL_ID]
    segments = [
        "|".join(["MSH", "^~\\&", application, facility, escape(header.sending_application) if header else "",
                  escape(header.sending_facility) if header else "", now, "", ack_type(version, trigger), control,
                  (header.processing_id[:1] or "P") if header else "P", version]),
        "|".join(["MSA", answer, escape(header.control_id) if header else "", escape(text)[:80]]),
    ]
    if error is not None:
        where = (error.location or "").split("^")
        code = f"{error.hl7_code}^{ERROR_TEXT.get(error.hl7_code, '')}^HL70357"
        if version in ("2.5", "2.5.1"):
            segments.append("|".join(["ERR", "", error.location or "", code, "E",
                                      "", "", "", escape(error.message)[:250]]))
        else:
            location = "^".join(where[:3]) if error.location else "^^"
            segments.append("|".join(["ERR", f"{location}^{error.hl7_code}&{escape(error.message)[:200]}"]))
    return "\r".join(segments) + "\r"


def conformance_problems(text: str) -> list[str]:
    """What hl7apy's strict validation finds wrong with a message (slow: use on demand, not on ingest)."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.exceptions import HL7apyException
    from hl7apy.parser import parse_message

    try:
        message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        message.validate()
    except HL7apyException as exc:
        return [str(exc)]
    except Exception as exc:  # hl7apy raises plain errors on structure it does not know
        return [f"{type(exc).__name__}: {exc}"]
    return []
