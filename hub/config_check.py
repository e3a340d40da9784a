"""Checking the whole configuration at once: ``hub.toml`` and every file it names.

:func:`check_config` loads the settings and every configuration file they name
(survivorship, identity, subscriptions, schedules, the access policy, and each link's:
entry-point group ``carehub.config_files``) with the loaders the hub itself uses, and
answers every problem with its file and key, or the effective settings with secrets
masked. Entry points call :func:`require_valid` at start-up, so a bad file stops the hub
before it serves or syncs anything; ``carehub config check`` prints the report.

``carehub config check`` goes further (``built=True``): it loads everything the configuration
names by import path (the enrichers, the scheduled jobs) and builds every source and target
adapter as a sync or a worker would (mapping files, their team codes, adapter options), making no
connection; so a typo there shows before the first sync or delivery, not at it. Start-up skips
this: it imports every link and costs every command a second or more.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hub.access.policy import Policy, load_teams
from hub.delivery.config import load_delivery_config, load_schedule_config
from hub.errors import ConfigError, HubError
from hub.identity.config import read_identity_config
from hub.registry import load_adapter, load_object, load_target
from hub.settings import Settings, config_file
from hub.survivorship import Survivorship

MASK = "********"
_SECRET_KEY = re.compile(r"password|passwd|secret|token|api_?key|credential|private", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@/\s]+@")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong: the file, the key within it (dotted; empty for the whole file), and what."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}" if self.key else f"{self.file}: {self.message}"


@dataclass
class ConfigReport:
    """What :func:`check_config` found: the effective settings (masked) and the files read, or problems."""

    problems: list[Problem] = field(default_factory=list)
    effective: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def _link_loader(load: Callable[[Settings], object], settings: Settings) -> Callable[[Path], object]:
    """A link's loader(settings) as a loader of the file its settings key names."""
    return lambda _path: load(settings)


def _loaders(settings: Settings) -> dict[str, Callable[[Path], object]]:
    """Each named file's loader: the core's own, and each link's (entry-point group ``carehub.config_files``:
    the settings key naming the file -> a loader(settings))."""
    loaders: dict[str, Callable[[Path], object]] = {
        "survivorship_file": Survivorship.load,
        "identity_file": read_identity_config,
        "subscriptions_file": lambda _path: load_delivery_config(settings),
        "schedules_file": lambda _path: load_schedule_config(settings),
        "auth.policy_file": Policy.load,
    }
    if settings.auth.teams_file:
        loaders["auth.teams_file"] = load_teams
    for entry in entry_points(group="carehub.config_files"):
        loaders[entry.name] = _link_loader(entry.load(), settings)
    return loaders


def check_config(load: Callable[[], Settings] = Settings, built: bool = False) -> ConfigReport:
    """Load the settings and every file they name; every problem found, or the effective settings. With
    ``built``, also what they name by import path and every adapter (see the module)."""
    report = ConfigReport()
    main_file = str(config_file())
    try:
        settings = load()
    except ValidationError as exc:
        for err in exc.errors():
            report.problems.append(Problem(main_file, ".".join(str(p) for p in err["loc"]), err["msg"]))
        return report
    report.files["hub.toml"] = main_file
    named = settings.named_files()
    for key, loader in _loaders(settings).items():
        path = named.get(key)
        if path is None:
            report.problems.append(Problem(main_file, key, "a loader names a file the settings do not"))
            continue
        report.files[key] = str(path)
        try:
            loader(path)
        except HubError as exc:
            message = exc.message
            for prefix in (f"{path}: ", f"retention file {path}: "):
                message = message.removeprefix(prefix)
            report.problems.append(Problem(str(path), "", message))
    if built and report.ok:
        _build_everything(settings, report, main_file)
    report.effective = mask(settings.model_dump(mode="json"))
    return report


def _build_everything(settings: Settings, report: ConfigReport, main_file: str) -> None:
    """The enrichers and scheduled jobs loaded, and every source and target adapter built (no connection made),
    each failure a problem at the key that names it."""

    def attempt(file: str, key: str, build: Callable[..., object], *args: Any) -> None:
        try:
            build(*args)
        except HubError as exc:
            report.problems.append(Problem(file, key, exc.message))
        except Exception as exc:  # noqa: BLE001 - an adapter's own refusal of its options, reported as found
            report.problems.append(Problem(file, key, f"{type(exc).__name__}: {exc}"))

    for number, path in enumerate(settings.pipeline.enrichers):
        attempt(main_file, f"pipeline.enrichers.{number}", load_object, path)
    for name in settings.sources:
        attempt(main_file, f"sources.{name}", lambda n: load_adapter(settings, n).close(), name)
    delivery = load_delivery_config(settings)
    targets_file = str(settings.config_path(settings.subscriptions_file))
    for name in delivery.targets:
        attempt(targets_file, f"targets.{name}", load_target, settings, delivery, name)
    schedules_file = str(settings.config_path(settings.schedules_file))
    for name, job in load_schedule_config(settings).jobs.items():
        attempt(schedules_file, f"jobs.{name}.call", load_object, job.call)


def require_valid(load: Callable[[], Settings] = Settings) -> None:
    """Raise :class:`ConfigError` listing every problem of the configuration (start-up)."""
    report = check_config(load)
    if not report.ok:
        raise ConfigError("configuration is invalid: " + "; ".join(str(p) for p in report.problems))


def mask(value: Any, key: str = "") -> Any:
    """Settings as plain JSON with secrets hidden: values of secret-sounding keys, passwords in URLs."""
    if isinstance(value, dict):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key) for v in value]
    if isinstance(value, str):
        if _SECRET_KEY.search(key) and value:
            return MASK
        return _URL_PASSWORD.sub(rf"\1{MASK}@", value)
    return value
