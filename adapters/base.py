"""The base every adapter builds on: declared streams, a mapping file, no state of its own.

An adapter reads its settings (``[sources.NAME]`` in config/hub.toml), says which
streams it offers, yields source records after a cursor, and maps a record with
its declarative mapping. Paging, cursors, retries and quarantine live in the hub.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from hub.access.policy import Policy
from hub.contract import MappedRecord, SourceRecord, StreamCursor, StreamSpec
from hub.errors import ConfigError
from hub.settings import SourceSettings, get_settings
from mappings.engine import SourceMapping, check_codes, load_mapping


class BaseAdapter:
    """Common construction and mapping for adapters driven by a mapping file."""

    def __init__(self, name: str, settings: SourceSettings) -> None:
        self.name = name
        self.settings = settings
        if not settings.mapping:
            raise ConfigError(f"source {name!r} needs a mapping file")
        self.mapping: SourceMapping = load_mapping(settings.mapping)
        teams = team_codes()
        if teams:
            check_codes(self.mapping, "team", teams, "team code of config/teams.toml")

    def option(self, key: str, default: Any = None) -> Any:
        """One adapter option from the source's settings."""
        return self.settings.options.get(key, default)

    def streams(self) -> list[StreamSpec]:
        """The mapping's streams, in file order (persons before what refers to them)."""
        return [
            StreamSpec(
                name=s.name, entity_type=s.entity,
                depends_on=sorted({r.ref for r in s.rules if r.ref is not None and r.ref != s.name}),
            )
            for s in self.mapping.streams.values()
        ]

    def map(self, record: SourceRecord) -> MappedRecord:
        """Apply the stream's mapping to a record's payload (raises QuarantineError if bad)."""
        return self.mapping.streams[record.stream].apply(record.payload)

    def pull(self, stream: str, cursor: StreamCursor, until: datetime) -> Iterator[SourceRecord]:
        """Yield records after ``cursor``; each adapter says how."""
        raise ConfigError(f"adapter {type(self).__name__} cannot be pulled from")

    def can_read_ahead(self) -> bool:
        """True when pull and map may run in a forked reader process (``hub.sync``); the default cannot."""
        return False

    def after_fork(self) -> None:
        """Called first in the forked reader: drop what must not be shared with the parent."""

    def close(self) -> None:
        """Release connections; the default holds none."""


def team_codes() -> frozenset[str]:
    """The hub's team codes (``auth.teams_file``: reference data), which a mapping's ``team`` must give; none when
    the settings name no teams file."""
    return frozenset(team.code for team in Policy.of(get_settings()).teams)
