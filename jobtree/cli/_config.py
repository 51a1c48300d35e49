"""The user configuration file: defaults for the command line (command-line flags win).

``platformdirs.user_config_dir("jobtree")/config.toml`` (``~/.config/jobtree/config.toml`` on
Linux), or the file named by ``$JOBTREE_CONFIG``::

    queue = "/mnt/farm/queue"   # the queue of commands that take --queue
    color = "auto"              # true/"auto", false/"never", "always"
    refresh = 1.0               # seconds between two frames of `jobtree top`
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

import platformdirs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_ENV = "JOBTREE_CONFIG"
"""A config file to read instead of the one in the platform's config directory."""
QUEUE_ENV = "JOBTREE_QUEUE"
"""The default queue; beats the config file, loses to --queue."""

COLOR_CHOICES = ("auto", "always", "never")
KEYS = ("queue", "color", "refresh")


class ConfigError(ValueError):
    """The config file cannot be read or has a bad value; the message names the file."""


@dataclass
class UserConfig:
    path: str
    exists: bool = False
    queue: str | None = None
    color: str = "auto"
    refresh: float = 1.0
    warnings: list[str] = field(default_factory=list)

    def asDict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "exists": self.exists,
            "queue": self.queue,
            "color": self.color,
            "refresh": self.refresh,
        }


def configPath() -> str:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return os.path.abspath(os.path.expanduser(env))
    return os.path.join(platformdirs.user_config_dir("jobtree"), "config.toml")


def _color(value: Any, where: str) -> str:
    if value is True:
        return "auto"
    if value is False:
        return "never"
    if isinstance(value, str) and value.lower() in COLOR_CHOICES:
        return value.lower()
    raise ConfigError(
        f'{where}: \'color\' must be true, false, "auto", "always" or "never", not {value!r}'
    )


def loadConfig(path: str | None = None) -> UserConfig:
    """Read the user config file; a missing file is an empty config."""
    path = path or configPath()
    config = UserConfig(path=path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return config
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    config.exists = True
    for key, value in data.items():
        if key == "queue":
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{path}: 'queue' must be a path (a string), not {value!r}")
            config.queue = os.path.expanduser(value)
        elif key == "color":
            config.color = _color(value, path)
        elif key == "refresh":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(
                    f"{path}: 'refresh' must be a number of seconds > 0, not {value!r}"
                )
            config.refresh = float(value)
        else:
            config.warnings.append(
                f"config file {path}: unknown key {key!r} ignored (known keys: {', '.join(KEYS)})"
            )
    return config
