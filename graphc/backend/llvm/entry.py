"""Fast Python entry points for kernels: a CPython ``METH_FASTCALL`` function per kernel.

Calling a kernel through ctypes costs about a microsecond (argument conversion and
the foreign-call machinery); with tens of small kernels per training step that is
most of the step. So each kernel ``name`` with the kernels' calling convention
(``i32 name(i64 start, i64 stop, PyArrayObject *a0, ...)``) gets a companion
``name__py`` written in LLVM IR, which CPython calls directly as a builtin:
``entry(start, stop, a0, a1, ...) -> int``. It is a second gate, behind the
executor's runner: it checks the argument count, that ``0 <= start <= stop`` and
that every array argument is an ``ndarray`` (the ``self`` the builtin is bound to
is ``numpy.ndarray``, so no address is baked into the code and the object code
stays cacheable), releases the GIL around the kernel (so threads can split one
kernel, as with ctypes) and returns the kernel's status. C-API symbols resolve
against the running interpreter when the object code is loaded.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np
from llvmlite import ir

from graphc.backend.llvm.irutil import I8, I32, I64, PTR
from graphc.backend.llvm.kernel import OFF_DATA

SUFFIX = "__py"
METH_FASTCALL = 0x0080
OB_TYPE_OFFSET = 8  # PyObject: ob_refcnt, ob_type


C_API = ("PyErr_SetString", "PyErr_Occurred", "PyLong_AsLongLong", "PyLong_FromLongLong",
         "PyType_IsSubtype", "PyEval_SaveThread", "PyEval_RestoreThread", "PyExc_TypeError",
         "PyExc_ValueError")
_available: bool | None = None


def available() -> bool:
    """Whether fast entries work here: ``ob_type`` where they read it, and every C-API
    symbol they use resolvable (else loading their object code would abort)."""
    global _available
    if _available is None:
        try:
            import llvmlite.binding as llvm

            from graphc.backend.llvm import jit

            jit.init()
            obj = np.zeros(1)
            ok = ctypes.c_void_p.from_address(id(obj) + OB_TYPE_OFFSET).value == id(np.ndarray)
            for sym in C_API if ok else ():
                # Bound explicitly (not left to the JIT's search of the process): found here
                # means found at load time.
                llvm.add_symbol(sym, ctypes.cast(getattr(ctypes.pythonapi, sym), ctypes.c_void_p).value)
            _available = ok
        except Exception:
            _available = False
    return _available


def _declare(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, args), name=name)
    return fn


def _message(module: ir.Module, key: str, text: str) -> ir.GlobalVariable:
    name = f"graphc_entry_msg_{key}"
    g = module.globals.get(name)
    if g is None:
        data = bytearray(text.encode() + b"\0")
        g = ir.GlobalVariable(module, ir.ArrayType(I8, len(data)), name=name)
        g.global_constant = True
        g.linkage = "internal"
        g.initializer = ir.Constant(ir.ArrayType(I8, len(data)), data)
    return g


def kernel_arrays(module: ir.Module, name: str) -> int | None:
    """How many array arguments kernel ``name`` takes, None if it has another convention."""
    fn = module.globals.get(name)
    if not isinstance(fn, ir.Function) or fn.is_declaration:
        return None
    ftype = fn.function_type
    args = list(ftype.args)
    if ftype.return_type != I32 or len(args) < 2 or args[0] != I64 or args[1] != I64:
        return None
    if any(not isinstance(a, ir.PointerType) for a in args[2:]):
        return None
    return len(args) - 2


def entry_name(n: int) -> str:
    """The symbol of the shared fast entry for kernels of ``n`` arrays."""
    return f"graphc_entry_{n}{SUFFIX}"


def build_entry(module: ir.Module, n: int) -> str:
    """Add the fast entry shared by every kernel of ``n`` arrays to ``module``.

    Its ``self`` is an int64 ndarray ``[kernel address, id(numpy.ndarray)]`` (``bind``): the
    kernel is called indirectly, so one entry per arity serves every kernel (the per-kernel
    entries were ~10% of a function's LLVM time), and no address is baked into the code."""
    raise_ = _declare(module, "PyErr_SetString", ir.VoidType(), [PTR, PTR])
    occurred = _declare(module, "PyErr_Occurred", PTR, [])
    as_i64 = _declare(module, "PyLong_AsLongLong", I64, [PTR])
    from_i64 = _declare(module, "PyLong_FromLongLong", PTR, [I64])
    is_subtype = _declare(module, "PyType_IsSubtype", I32, [PTR, PTR])
    save = _declare(module, "PyEval_SaveThread", PTR, [])
    restore = _declare(module, "PyEval_RestoreThread", ir.VoidType(), [PTR])
    exc_type = module.globals.get("PyExc_TypeError")
    if exc_type is None:
        exc_type = ir.GlobalVariable(module, PTR, name="PyExc_TypeError")  # external
    exc_value = module.globals.get("PyExc_ValueError")
    if exc_value is None:
        exc_value = ir.GlobalVariable(module, PTR, name="PyExc_ValueError")

    fn = ir.Function(module, ir.FunctionType(PTR, [PTR, PTR, I64]), name=entry_name(n))
    bound, args, nargs = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    null = ir.Constant(PTR, None)
    words = b.load(b.gep(bound, [ir.Constant(I64, OFF_DATA)], source_etype=I8), typ=PTR)
    kernel = b.load(words, typ=PTR)
    array_type = b.load(b.gep(words, [ir.Constant(I64, 1)], source_etype=I64), typ=PTR)

    def fail(exc: ir.GlobalVariable, key: str, text: str) -> None:
        msg = _message(module, key, text)
        b.call(raise_, [b.load(exc, typ=PTR), b.gep(msg, [ir.Constant(I32, 0), ir.Constant(I32, 0)])])
        b.ret(null)

    def check(cond: ir.Value, exc: ir.GlobalVariable, key: str, text: str) -> None:
        ok = fn.append_basic_block("ok")
        bad = fn.append_basic_block("bad")
        b.cbranch(cond, ok, bad)
        b.position_at_end(bad)
        fail(exc, key, text)
        b.position_at_end(ok)

    check(b.icmp_signed("==", nargs, ir.Constant(I64, n + 2)), exc_type, f"nargs{n}",
          f"graphc kernel entry: expected start, stop and {n} arrays")
    start = b.call(as_i64, [b.load(args, typ=PTR)])
    stop = b.call(as_i64, [b.load(b.gep(args, [ir.Constant(I64, 1)], source_etype=PTR), typ=PTR)])
    failed = b.or_(b.icmp_signed("==", start, ir.Constant(I64, -1)),
                   b.icmp_signed("==", stop, ir.Constant(I64, -1)))
    with b.if_then(failed, likely=False):
        with b.if_then(b.icmp_unsigned("!=", b.call(occurred, []), null)):
            b.ret(null)
    check(b.and_(b.icmp_signed(">=", start, ir.Constant(I64, 0)), b.icmp_signed("<=", start, stop)),
          exc_value, "range", "graphc kernel entry: need 0 <= start <= stop")
    arrays = []
    for k in range(n):
        obj = b.load(b.gep(args, [ir.Constant(I64, k + 2)], source_etype=PTR), typ=PTR)
        otype = b.load(b.gep(obj, [ir.Constant(I64, OB_TYPE_OFFSET)], source_etype=I8), typ=PTR)
        exact = b.icmp_unsigned("==", otype, array_type)
        sub = fn.append_basic_block(f"subtype{k}")
        done = fn.append_basic_block(f"array{k}")
        b.cbranch(exact, done, sub)
        b.position_at_end(sub)
        check(b.icmp_signed("!=", b.call(is_subtype, [otype, array_type]), ir.Constant(I32, 0)),
              exc_type, "type", "graphc kernel entry: arguments after start and stop must be ndarrays")
        b.branch(done)
        b.position_at_end(done)
        arrays.append(obj)
    state = b.call(save, [])
    rc = _call_ptr(b, kernel, n, start, stop, arrays)
    b.call(restore, [state])
    b.ret(b.call(from_i64, [b.sext(rc, I64)]))
    return fn.name


def _call_ptr(b: ir.IRBuilder, ptr: ir.Value, n: int, start: ir.Value, stop: ir.Value,
              arrays: list[ir.Value]) -> ir.Value:
    """An indirect call of the kernel at ``ptr`` (``i32 (i64, i64, ptr x n)``): llvmlite
    calls any value that has a ``function_type``."""
    cls = type(ptr)
    ptr.__class__ = type("Callee", (cls,), {"function_type": ir.FunctionType(I32, [I64, I64] + [PTR] * n)})
    return b.call(ptr, [start, stop, *arrays])


_entries: dict[int, tuple[int, object]] = {}  # arity -> (entry address, its compiled module)
_entries_lock = threading.Lock()


def prepare(arities: set[int]) -> None:
    """Compile (through the compile cache, all at once) the shared entries of ``arities``
    this process does not have yet."""
    from graphc.backend.llvm import kernel_parts

    with _entries_lock:
        missing = sorted(n for n in arities if n not in _entries)
        if not missing or not available():
            return
        builders = {entry_name(n): (lambda m, n=n: build_entry(m, n)) for n in missing}
        compiled, _ = kernel_parts.compile_kernels(builders, 0)  # optnone code: O0 costs ~half
        if compiled is None:
            return
        for n in missing:
            addr = compiled.addresses.get(entry_name(n))
            if addr:
                _entries[n] = (addr, compiled)


def prepare_soon(arities: set[int]) -> None:
    """``prepare(arities)`` in a background thread (when some are missing), so the entries
    compile while a function's kernels do; ``prepare`` and ``bind`` wait for it (the lock)."""
    if all(n in _entries for n in arities) or not available():
        return

    def work() -> None:
        try:
            prepare(arities)
        except Exception:  # noqa: BLE001 - bind() prepares again and falls back to ctypes
            pass

    threading.Thread(target=work, name="graphc-entries", daemon=True).start()


def bind(kernel: int, n: int, name: str) -> object | None:
    """The fast entry (a builtin) of the kernel at address ``kernel`` taking ``n`` arrays,
    None if there is none; ``ENTRIES`` keeps it by the kernel's address."""
    fast = ENTRIES.get(kernel)
    if fast is not None:
        return fast
    prepare({n})
    found = _entries.get(n)
    if found is None:
        return None
    words = np.array([kernel, id(np.ndarray)], dtype=np.int64)  # the builtin's self keeps it
    fast = ENTRIES[kernel] = make_builtin_on(found[0], entry_name(n), words)
    return fast


class _MethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]


_new_builtin = ctypes.pythonapi.PyCFunction_NewEx
_new_builtin.restype = ctypes.py_object
_new_builtin.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.py_object]
_method_defs: list[_MethodDef] = []  # a builtin points at its PyMethodDef: keep them all alive


ENTRIES: dict[int, object] = {}  # kernel address -> its fast entry (a builtin)


_shared_defs: dict[int, _MethodDef] = {}  # one PyMethodDef per address, kept alive


def make_builtin_on(address: int, name: str, self_obj: object) -> object:
    """A builtin calling the ``METH_FASTCALL`` function at ``address`` with ``self_obj`` as
    its ``self`` (graphc.backend.llvm.plan binds its interpreter to a plan's table)."""
    md = _shared_defs.get(address)
    if md is None:
        md = _shared_defs[address] = _MethodDef(name.encode(), address, METH_FASTCALL, None)
    return _new_builtin(ctypes.addressof(md), self_obj, None)
