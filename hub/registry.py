"""The one place that knows every adapter: built from the sources in config.

Adapters are named by import path (``package.module:Class``) in config/hub.toml
(sources) and config/subscriptions.toml (targets), so the hub imports none of
them itself.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from hub.contract import Adapter, TargetAdapter
from hub.delivery.config import DeliveryConfig
from hub.errors import ConfigError
from hub.pipeline import Pipeline
from hub.settings import Settings
from hub.store.db import Store
from hub.survivorship import Survivorship


def load_object(path: str) -> Any:
    """Import ``package.module:attribute``."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{path!r} is not of the form 'package.module:attribute'")
    try:
        return getattr(import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load {path!r}: {exc}") from exc


def load_adapter(settings: Settings, name: str) -> Adapter:
    """Build the adapter configured as ``[sources.NAME]``."""
    if name not in settings.sources:
        known = ", ".join(sorted(settings.sources)) or "none"
        raise ConfigError(f"unknown source {name!r} (configured: {known})")
    source = settings.sources[name]
    options = {
        k: v.format(data_dir=settings.data_dir) if isinstance(v, str) else v for k, v in source.options.items()
    }
    source = source.model_copy(update={"options": options})
    cls = load_object(source.adapter)
    adapter: Adapter = cls(name, source)
    return adapter


def enabled_sources(settings: Settings) -> list[str]:
    """Names of the sources that are switched on, in config order."""
    return [name for name, s in settings.sources.items() if s.enabled]


def build_pipeline(settings: Settings, store: Store) -> Pipeline:
    """The pipeline with the configured survivorship rules and enrichers."""
    enrichers = [load_object(path)(store) for path in settings.pipeline.enrichers]
    return Pipeline(Survivorship.load(settings.config_path(settings.survivorship_file)), enrichers=enrichers)

def load_target(settings: Settings, config: DeliveryConfig, name: str) -> TargetAdapter:
    """Build the target adapter configured as ``[targets.NAME]`` in the subscriptions file."""
    if name not in config.targets:
        known = ", ".join(sorted(config.targets)) or "none"
        raise ConfigError(f"unknown target {name!r} (configured: {known})")
    target = config.targets[name]
    options = {
        k: v.format(data_dir=settings.data_dir, database_url=settings.database_url) if isinstance(v, str) else v
        for k, v in target.options.items()
    }
    cls = load_object(target.adapter)
    adapter: TargetAdapter = cls(name, target.model_copy(update={"options": options}))
    return adapter
