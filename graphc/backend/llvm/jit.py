"""The JIT: LLVM setup for the host CPU, the pass pipeline, parallel compilation, engines.

Facts this relies on (measured, see the design notes): ``llvm.initialize()``
raises in llvmlite 0.50, so only the native target, asm printer and asm
parser are initialized; a module pass manager may run only once, so each
module gets a fresh one; an execution engine owns its target machine, so
each engine gets its own.

Compile time is LLVM's (passes and code generation: ~30 ms per elementwise kernel
here), so: O2 with the loop vectorizer but no SLP, interleaving, unrolling or epilogue
vectorization (under half the time of O3, the same speed on our loops); a function's
kernels in several modules compiled by parallel threads, each module in its own
LLVM context with the two long calls made without llvmlite's process-wide lock;
each module's object code in its own engine.
"""

from __future__ import annotations

import ctypes
import functools
import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import llvmlite.binding as llvm
from llvmlite import ir
from llvmlite.binding import ffi

_lock = threading.Lock()
_initialized = False


def init() -> None:
    """Initialize the native target, asm printer and parser (once per process)."""
    global _initialized
    with _lock:
        if not _initialized:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            llvm.initialize_native_asmparser()
            # A vectorized loop's remainder runs scalar instead of through a second, narrower
            # vector loop: less code to optimize and generate (a process-wide LLVM option).
            llvm.set_option("graphc", "-enable-epilogue-vectorization=false")
            _initialized = True


@functools.lru_cache(maxsize=1)
def host_cpu() -> tuple[str, str]:
    """This CPU's name and LLVM feature string (each query costs ~1 ms: asked once)."""
    init()
    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


def host_target_machine(opt: int = 3) -> llvm.TargetMachine:
    """A target machine for this CPU (its name and feature string), PIC, JIT code model."""
    init()
    target = llvm.Target.from_default_triple()
    cpu, features = host_cpu()
    return target.create_target_machine(
        cpu=cpu,
        features=features,
        opt=opt,
        reloc="pic",
        codemodel="jitdefault",
    )


def host_triple() -> str:
    init()
    return llvm.get_process_triple()


def _pass_builder(tm: llvm.TargetMachine, opt: int) -> object:
    pto = llvm.create_pipeline_tuning_options(speed_level=max(0, min(opt, 2)))
    if opt >= 2:
        pto.loop_vectorization = True
        # SLP (straight-line) vectorization stays off: ~8% of the compile time, and W1, W3,
        # W6 (reductions, sin/cos/pow) and W7 (random) ran the same without it (measured side
        # by side, one thread): our hot code is loops, which the loop vectorizer handles.
        pto.slp_vectorization = False
        pto.loop_interleaving = False
        pto.loop_unrolling = False
    return llvm.create_pass_builder(tm, pto)


#: The "light" pipeline (opt level LIGHT): promote stack slots to registers, combine and
#: simplify, no loop passes. For code whose loops are short bookkeeping (the strided
#: driver): ~4 ms instead of ~50 ms through the O2 pipeline.
LIGHT = -1
_LIGHT_PASSES = ("sroa", "instruction_combine", "simplify_cfg", "new_gvn", "instruction_combine",
                 "simplify_cfg", "dead_code_elimination")


def _module_pass_manager(pb: object, opt: int) -> object:
    if opt != LIGHT:
        return pb.getModulePassManager()  # type: ignore[attr-defined]
    mpm = llvm.create_new_module_pass_manager()
    for name in _LIGHT_PASSES:
        getattr(mpm, f"add_{name}_pass")()
    return mpm


def optimize(module: llvm.ModuleRef, tm: llvm.TargetMachine, opt: int = 3) -> None:
    """Run the pipeline for ``opt``: from 2 up, LLVM's O2 with loop vectorization.

    Not O3, and no loop interleaving, unrolling or epilogue vectorization: measured on the
    W3 step's 16 kernels, that halves the compile time (~1.0 s -> ~0.5 s for passes and
    code generation) and the object code, while W1/W3 run as fast (the loops are
    memory-bound or already wide: 8-16 floats per vector op)."""
    pb = _pass_builder(tm, opt)
    mpm = _module_pass_manager(pb, opt)  # fresh per module: running one twice aborts
    mpm.run(module, pb)


@dataclass
class CompiledModule:
    """A finalized module: function addresses plus what keeps them alive.

    The IR texts are produced on demand (``ir_source``): a module loaded from the
    compile cache reads them from its entry only when someone asks.
    """

    engine: llvm.ExecutionEngine | list[llvm.ExecutionEngine] | None  # one per object part
    addresses: dict[str, int] = field(default_factory=dict)
    ir_source: Callable[[], tuple[str | None, str | None]] | None = None
    obj: bytes = b""
    key: str | None = None  # the compile-cache key, when it went through the cache
    from_cache: bool = False
    _texts: tuple[str | None, str | None] | None = None
    _asm: str | None = None

    def _ir(self) -> tuple[str | None, str | None]:
        if self._texts is None:
            self._texts = self.ir_source() if self.ir_source else (None, None)
        return self._texts

    @property
    def ir_text(self) -> str:
        """The module's LLVM IR as generated (before optimization)."""
        return self._ir()[0] or ""

    @property
    def opt_ir_text(self) -> str:
        """The module's LLVM IR after the O3 pipeline (what was compiled)."""
        return self._ir()[1] or ""

    def asm(self) -> str:
        """Assembly for the host CPU, generated again from the optimized IR."""
        text = self.opt_ir_text
        if not text:
            return ""
        if self._asm is None:
            tm = host_target_machine()
            self._asm = "\n".join(tm.emit_assembly(llvm.parse_assembly(part))
                                  for part in text.split(PART_MARK))
        return self._asm


#: Suffix of a kernel's internal helper holding its math (graphc.backend.llvm.kernel).
BODY_SUFFIX = ".body"


def function_ir(module_text: str, name: str) -> str:
    """The definition of function ``name`` in a module's IR text ("" if it has none),
    followed by its ``.body`` helper's when it has one (an elementwise kernel's math)."""
    found = []
    for fn in (name, name + BODY_SUFFIX):
        pattern = rf'^define [^\n]*@"?{re.escape(fn)}"?\(.*?^}}$'  # llvmlite quotes names
        m = re.search(pattern, module_text, re.MULTILINE | re.DOTALL)
        if m:
            found.append(m.group(0))
        elif not found:
            return ""
    return "\n\n".join(found)


def function_asm(asm_text: str, name: str) -> str:
    """The assembly of function ``name`` (its label to the end-of-function marker), then
    its ``.body`` helper's when it has one."""
    found = []
    for fn in (name, name + BODY_SUFFIX):
        m = re.search(rf"^{re.escape(fn)}:.*?^\.Lfunc_end\d+:", asm_text, re.MULTILINE | re.DOTALL)
        if m:
            found.append(m.group(0))
        elif not found:
            return ""
    return "\n\n".join(found)


# A kernel's fast Python entry (graphc.backend.llvm.entry: ``name__py(self, args, nargs)``):
# straight-line argument checks around one call. Compiled ``optnone`` (no IR passes,
# fast instruction selection): ~15% less compile time for a function's kernels, and
# measured the same per call (~170 ns, the GIL release and the kernel dominate).
_ENTRY_DEFINE = re.compile(r'^(define ptr @"?[\w.]+__py"?\(ptr %"?\.1"?, ptr %"?\.2"?, i64 %"?\.3"?\))',
                           re.MULTILINE)

# A definition line: the signature, then plain attributes (``nounwind``, ``noinline``...).
_DEFINE = re.compile(r"^define [^\n]*\)(?: [a-z_]+)*$", re.MULTILINE)


def vector_width_attribute() -> str:
    """Ask for 512-bit vectors where the CPU has them: LLVM's tuning for recent Intel
    cores prefers 256 bits, and elementwise math is twice as fast with the full width."""
    return ' "prefer-vector-width"="512"' if "+avx512f" in host_cpu()[1].split(",") else ""


def module_text(module: ir.Module) -> str:
    """``module``'s IR text for the host, with the attributes llvmlite cannot express."""
    init()
    module.triple = host_triple()
    text = str(module)
    extra = vector_width_attribute()
    if extra:  # llvmlite cannot attach string attributes itself
        text = _DEFINE.sub(lambda m: m.group(0) + extra, text)
    return _ENTRY_DEFINE.sub(r"\1 optnone noinline", text)


def _unlocked(name: str) -> Callable[..., object] | None:
    """llvmlite's binding function ``name`` without the process-wide lock llvmlite puts
    around every call (None if this llvmlite has no such function)."""
    try:
        return getattr(getattr(ffi.lib, name), "_cfn", None)
    except AttributeError:
        return None


def _optimize_and_emit(mod: llvm.ModuleRef, tm: llvm.TargetMachine, opt: int,
                       unlocked: bool) -> bytes:
    """``optimize`` then emit an object file; ``unlocked``: the two long calls (the pass
    pipeline and code generation) skip llvmlite's lock, so threads compiling modules in
    separate LLVM contexts run them in parallel (LLVM itself is thread-safe that way)."""
    run = _unlocked("LLVMPY_RunNewModulePassManager") if unlocked else None
    emit = _unlocked("LLVMPY_TargetMachineEmitToMemory") if unlocked else None
    if run is None or emit is None:
        optimize(mod, tm, opt)
        return tm.emit_object(mod)
    pb = _pass_builder(tm, opt)
    mpm = _module_pass_manager(pb, opt)  # fresh per module: running one twice aborts
    run(mpm, mod, pb)
    with ffi.OutputString() as err:
        buf = emit(tm, mod, 1, err)
        if not buf:
            raise RuntimeError(str(err))
    try:
        return ctypes.string_at(ffi.lib.LLVMPY_GetBufferStart(buf), ffi.lib.LLVMPY_GetBufferSize(buf))
    finally:
        ffi.lib.LLVMPY_DisposeMemoryBuffer(buf)


def build_object(text: str, opt: int = 3, unlocked: bool = False) -> tuple[bytes, str]:
    """Verify and optimize IR ``text`` at ``opt``; return (object file, optimized IR)."""
    init()
    mod = llvm.parse_assembly(text, context=llvm.create_context() if unlocked else None)
    mod.verify()
    tm = host_target_machine(2 if opt == LIGHT else opt)
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    obj = _optimize_and_emit(mod, tm, opt, unlocked)
    return obj, str(mod)


def build_objects(texts: list[str], opt: int | list[int] = 3) -> list[tuple[bytes, str]]:
    """``build_object`` of each module text (at ``opt``, or ``opt[k]`` for text k), in
    parallel threads (one per text): the compile time of a function's kernels is LLVM's,
    and this divides it by the cores."""
    opts = opt if isinstance(opt, list) else [opt] * len(texts)
    if len(texts) <= 1 or _unlocked("LLVMPY_RunNewModulePassManager") is None:
        return [build_object(t, o) for t, o in zip(texts, opts)]
    results: list[tuple[bytes, str] | None] = [None] * len(texts)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            results[k] = build_object(texts[k], opts[k], unlocked=True)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,), name="graphc-llvm") for k in range(1, len(texts))]
    for t in threads:
        t.start()
    work(0)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]


class Builds:
    """Module texts compiled into object code in threads, each one started as soon as its
    text exists: while LLVM compiles a part (without the GIL), Python generates the next
    part's IR. ``results`` waits for them all (in order); errors re-raise there."""

    def __init__(self) -> None:
        self._jobs: list[tuple[threading.Thread | None, dict[str, object]]] = []
        self._parallel = _unlocked("LLVMPY_RunNewModulePassManager") is not None

    def start(self, text: str, opt: int) -> None:
        job: dict[str, object] = {"text": text, "opt": opt}
        thread = None
        if self._parallel:
            def work() -> None:
                try:
                    job["built"] = build_object(text, opt, unlocked=True)
                except BaseException as exc:  # noqa: BLE001 - re-raised by results()
                    job["error"] = exc

            thread = threading.Thread(target=work, name="graphc-llvm", daemon=True)
            thread.start()
        self._jobs.append((thread, job))

    def results(self) -> list[tuple[bytes, str]]:
        out = []
        for thread, job in self._jobs:
            if thread is None:
                job["built"] = build_object(job["text"], job["opt"])  # type: ignore[arg-type]
            else:
                thread.join()
            if "error" in job:
                raise job["error"]  # type: ignore[misc]
            out.append(job["built"])
        return out  # type: ignore[return-value]


# Object code of a module built in several parts: the parts' object files, concatenated.
_PARTS = b"GRAPHC-OBJECTS-1\n"


def pack_objects(objs: list[bytes]) -> bytes:
    if len(objs) == 1:
        return objs[0]
    return _PARTS + struct.pack(f"<I{len(objs)}Q", len(objs), *map(len, objs)) + b"".join(objs)


def unpack_objects(blob: bytes) -> list[bytes]:
    if not blob.startswith(_PARTS):
        return [blob]
    at = len(_PARTS)
    (n,) = struct.unpack_from("<I", blob, at)
    sizes = struct.unpack_from(f"<{n}Q", blob, at + 4)
    at += 4 + 8 * n
    objs = []
    for size in sizes:
        objs.append(blob[at:at + size])
        at += size
    if at != len(blob) or any(len(o) != size for o, size in zip(objs, sizes)):
        raise RuntimeError("object code parts do not add up")
    return objs


def load_object(obj: bytes, names: list[str]) -> tuple[object, dict[str, int]]:
    """A fresh engine running object file ``obj`` (one per part ``pack_objects`` packed:
    MCJIT given several object files with same-named internal helpers crashed the
    kernels); the addresses of ``names`` in them.

    ``obj`` must come from ``build_object`` (or a verified cache entry of one): LLVM
    does not survive a malformed object file.
    """
    init()
    from graphc.backend.llvm import strided_driver

    engines = []
    addresses: dict[str, int] = {}
    for part in unpack_objects(obj):
        if strided_driver.needed_by(part):  # an external symbol: bound before loading
            strided_driver.bind()
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), host_target_machine())
        engine.add_object_file(llvm.ObjectFileRef.from_data(part))
        engine.finalize_object()
        engine.run_static_constructors()
        engines.append(engine)
        for n in names:
            addr = engine.get_function_address(n)
            if addr:
                addresses[n] = addr
    engine = engines[0] if len(engines) == 1 else engines
    missing = [n for n in names if not addresses.get(n)]
    if missing:
        raise RuntimeError(f"object code defines no {missing}")
    return engine, addresses


#: Between the parts of a module's IR texts (``CompiledModule.ir_text``): each part is a
#: module of its own.
PART_MARK = "\n; ---- graphc: next part (a module of its own) ----\n"


def compile_module(module: ir.Module | list[ir.Module], names: list[str],
                   opt: int | list[int] = 3) -> CompiledModule:
    """Verify, optimize at ``opt``, JIT-compile ``module`` (or several modules, compiled in
    parallel and loaded into an engine each); return addresses of ``names``.

    Code generation runs once, into object files, which are then loaded; the object
    bytes stay available (``.obj``) for the compile cache.
    """
    modules = module if isinstance(module, list) else [module]
    texts = [module_text(m) for m in modules]
    return load_built(texts, build_objects(texts, opt), names)


def load_built(texts: list[str], built: list[tuple[bytes, str]], names: list[str]) -> CompiledModule:
    """Load the object code ``built`` from module texts ``texts``; the addresses of ``names``."""
    obj = pack_objects([o for o, _ in built])
    engine, addresses = load_object(obj, names)
    return CompiledModule(engine, addresses, obj=obj,
                          _texts=(PART_MARK.join(texts), PART_MARK.join(t for _, t in built)))
