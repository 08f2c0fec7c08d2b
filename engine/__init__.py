"""The conversation engine; for now the configuration tree the entry points read."""

from engine.settings import DEFAULT_CONFIG_FILE, Settings, load_settings

__all__ = ["DEFAULT_CONFIG_FILE", "Settings", "load_settings"]
