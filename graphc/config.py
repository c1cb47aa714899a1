"""Global settings: floatX, the default mode, the compile-cache directory.

Values come from defaults, then from the ``GRAPHC_FLAGS`` environment variable
(``GRAPHC_FLAGS="floatX=float64,mode=PY"``), and can be changed at run time by
assigning to the attributes of :data:`config`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

_FLOAT_DTYPES = ("float32", "float64")
_MODES = ("FAST_RUN", "FAST_COMPILE", "PY", "DEBUG")


@dataclass
class Config:
    floatX: str = "float32"
    mode: str = "FAST_RUN"
    # Compiled kernels are kept here between processes ("" switches the cache off).
    cache_dir: str = field(
        default_factory=lambda: os.environ.get("GRAPHC_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "graphc"
        )
    )
    # Raise on the first NaN produced by any node of a compiled function.
    nan_guard: bool = False

    def __setattr__(self, name: str, value: object) -> None:
        if name == "floatX" and value not in _FLOAT_DTYPES:
            raise ValueError(f"config.floatX must be one of {_FLOAT_DTYPES}, got {value!r}")
        if name == "mode" and value not in _MODES:
            raise ValueError(f"config.mode must be one of {_MODES}, got {value!r}")
        object.__setattr__(self, name, value)


def parse_flags(text: str, target: Config) -> None:
    """Apply ``key=value,key=value`` settings to ``target``."""
    known = {f.name: f.type for f in fields(target)}
    for item in filter(None, (part.strip() for part in text.split(","))):
        if "=" not in item:
            raise ValueError(f"GRAPHC_FLAGS entry {item!r} is not of the form key=value")
        key, value = (s.strip() for s in item.split("=", 1))
        if key not in known:
            raise ValueError(f"GRAPHC_FLAGS names unknown setting {key!r}; known: {sorted(known)}")
        if key == "nan_guard":
            value = value.lower() in ("1", "true", "yes", "on")
        setattr(target, key, value)


config = Config()
parse_flags(os.environ.get("GRAPHC_FLAGS", ""), config)
