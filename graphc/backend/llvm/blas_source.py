"""Where graphc's BLAS comes from, and the cells native kernels reach it through.

SciPy's ``scipy.linalg.cython_blas`` exports, in
``__pyx_capi__``, PyCapsules holding C pointers to the BLAS routines with the Fortran
convention (every argument by pointer, 32-bit ints, column-major). Chosen over the
``scipy-openblas32`` wheel (measured at the same speed from 256 to 2048) because it is
SciPy's documented API made for exactly this, it follows whatever BLAS SciPy was built
with (OpenBLAS wheels, MKL or Accelerate builds), it needs no library file names or
``RTLD_GLOBAL`` loading, and it adds no third copy of OpenBLAS (with its own thread
pool) next to NumPy's and SciPy's. The extension module is loaded by itself: importing
the ``scipy.linalg`` package first costs 150-370 ms, the module alone about 35 ms.

Kernels call each routine through a named external cell (``graphc_blas_sgemm``, ...)
bound with ``llvm.add_symbol`` to a ctypes pointer before any module is loaded, so object
code refers to names, not addresses, and stays valid in the on-disk compile cache across
processes. The cells are filled from SciPy on the first BLAS call, not while compiling:
a function loaded warm from the cache does not pay the 35 ms of loading SciPy's BLAS
unless it runs a product. A kernel finding its cell empty refuses. Without SciPy (or
with a BLAS whose ints are not 32-bit) the nodes run their NumPy ``perform``; integer
and mixed-dtype products always do.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import re
import sys
import threading
from pathlib import Path
from typing import Any

from graphc.backend.llvm import small_gemm

ROUTINES = ("sgemm", "dgemm", "sgemv", "dgemv")
_INT_ARGS = {"gemm": 6, "gemv": 5}  # how many `int *` parameters each signature must show
_lock = threading.Lock()
# One cell per routine holding its entry point; kernels load it through the named symbol.
_CELLS = {r: ctypes.c_void_p(0) for r in ROUTINES}
_bound = False
_present: bool | None = None
READY = False  # the cells hold SciPy's entry points
_failed = False


def symbol(routine: str) -> str:
    """The external symbol (a cell holding the entry point) kernels use for ``routine``."""
    return f"graphc_blas_{routine}"


def bind_symbols() -> None:
    """Bind each routine's symbol to its cell (cheap; SciPy itself is loaded on first use)."""
    global _bound
    with _lock:
        if not _bound:
            import llvmlite.binding as llvm

            for r, cell in _CELLS.items():
                llvm.add_symbol(symbol(r), ctypes.addressof(cell))
            for dt in ("float32", "float64"):
                llvm.add_symbol(small_gemm.symbol(dt), small_gemm.cell_address(dt))
            _bound = True


def _extension_path() -> Path | None:
    spec = importlib.util.find_spec("scipy")
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "linalg"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"cython_blas{suffix}"
        if path.is_file():
            return path
    return None


def blas_present() -> bool:
    """Whether SciPy's BLAS module is there, without loading it (a file lookup)."""
    global _present
    if _present is None:
        try:
            _present = "scipy.linalg.cython_blas" in sys.modules or _extension_path() is not None
        except (ImportError, ValueError):
            _present = False
    return _present and not _failed


def _cython_blas() -> Any:
    """SciPy's cython_blas module, without importing the scipy.linalg package."""
    name = "scipy.linalg.cython_blas"
    mod = sys.modules.get(name)
    if mod is not None:
        return mod
    path = _extension_path()
    if path is None:
        import scipy.linalg.cython_blas as mod  # an unusual layout: the slow, sure way

        return mod
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    mspec = importlib.util.spec_from_file_location(name, path, loader=loader)
    mod = importlib.util.module_from_spec(mspec)
    loader.exec_module(mod)
    return mod


def _capsule_pointer(capsule: Any) -> tuple[int, str]:
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    sig = api.PyCapsule_GetName(capsule)
    return api.PyCapsule_GetPointer(capsule, sig) or 0, (sig or b"").decode()


def blas_addresses() -> dict[str, int] | None:
    """routine -> address of SciPy's BLAS entry point, or None when unusable here."""
    try:
        caps = _cython_blas().__pyx_capi__
        out = {}
        for r in ROUTINES:
            addr, sig = _capsule_pointer(caps[r])
            # 32-bit ints only: an ILP64 build would misread every dimension.
            if not addr or not sig.startswith("void (char *") or len(re.findall(r"\bint \*", sig)) \
                    != _INT_ARGS[r[1:]]:
                return None
            out[r] = addr
        return out
    except Exception:  # no SciPy, or one we do not understand: NumPy's perform runs instead
        return None


def load_blas() -> bool:
    """Fill the cells with SciPy's entry points (once; ~35 ms); False if that is not possible."""
    global READY, _failed
    with _lock:
        if not READY and not _failed:
            addrs = blas_addresses()
            if addrs is None:
                _failed = True
            else:
                for r, addr in addrs.items():
                    _CELLS[r].value = addr
                READY = True
        return READY


def blas_available() -> bool:
    """Whether BLAS kernels can run here (loads SciPy's BLAS)."""
    bind_symbols()
    return load_blas()
