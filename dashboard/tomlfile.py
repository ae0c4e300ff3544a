"""Reading a TOML file an option names (``--config``, ``--alerts``), with errors that name the option."""
from __future__ import annotations

import tomllib
from typing import Any


def read_toml(path: str, option: str, error: type[Exception]) -> dict[str, Any]:
    """Return the file's tables; raise ``error`` saying ``--option PATH: why`` when it cannot be read or parsed."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise error(f"--{option} {path}: cannot read it: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"--{option} {path}: not valid TOML: {exc}") from None
