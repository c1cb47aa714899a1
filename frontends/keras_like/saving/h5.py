"""h5py access (an optional dependency: ``pip install graphc[h5]``) and the attribute encodings
Keras uses in HDF5 files."""

from __future__ import annotations

from typing import Any

import numpy as np

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# HDF5 object headers hold at most 64 KiB of attributes; Keras splits longer lists in chunks.
_ATTR_LIMIT = 64512


def require_h5py(what: str) -> Any:
    try:
        import h5py
    except ImportError as exc:
        raise ImportError(
            f"{what} needs h5py, which is not installed. Install it with `pip install h5py` "
            f"(or `pip install graphc[h5]`), or save to a path without a .keras/.h5 suffix to "
            f"use graphc's NumPy archive, which needs nothing extra.") from exc
    return h5py


def decode(value: Any) -> Any:
    """h5py hands attributes back as bytes, numpy bytes/str scalars or arrays of them."""
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf8")
    if isinstance(value, np.str_):
        return str(value)
    if isinstance(value, np.ndarray):
        return [decode(v) for v in value.tolist()]
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def read_str_list(group: Any, name: str) -> list[str]:
    """A list attribute (``layer_names``, ``weight_names``), also when Keras split it as name0,
    name1, ..."""
    if name in group.attrs:
        values = decode(group.attrs[name])
        return [values] if isinstance(values, str) else list(values)
    out: list[str] = []
    chunk = 0
    while f"{name}{chunk}" in group.attrs:
        out += decode(group.attrs[f"{name}{chunk}"])
        chunk += 1
    return out


def write_str_list(group: Any, name: str, values: list[str]) -> None:
    """Write as Keras does: bytes, split into chunks when over the attribute size limit."""
    data = np.array([v.encode("utf8") for v in values])
    if data.nbytes <= _ATTR_LIMIT:
        group.attrs[name] = data
        return
    chunks = 1
    while any(c.nbytes > _ATTR_LIMIT for c in np.array_split(data, chunks)):
        chunks += 1
    for i, part in enumerate(np.array_split(data, chunks)):
        group.attrs[f"{name}{i}"] = part


def read_str(attrs: Any, name: str, default: str | None = None) -> str | None:
    if name not in attrs:
        return default
    return decode(attrs[name])
