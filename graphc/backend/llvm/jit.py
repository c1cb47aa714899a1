"""The JIT: LLVM setup for the host CPU, the O3 pipeline, and engines.

Facts this relies on (measured, see the design notes): ``llvm.initialize()``
raises in llvmlite 0.50, so only the native target, asm printer and asm
parser are initialized; a module pass manager may run only once, so each
module gets a fresh one; an execution engine owns its target machine, so
each engine gets its own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import llvmlite.binding as llvm
from llvmlite import ir

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


def host_target_machine(opt: int = 3) -> llvm.TargetMachine:
    """A target machine for this CPU (its name and feature string), PIC, JIT code model."""
    init()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=opt,
        reloc="pic",
        codemodel="jitdefault",
    )


def host_triple() -> str:
    init()
    return llvm.get_process_triple()


def optimize(module: llvm.ModuleRef, tm: llvm.TargetMachine, opt: int = 3) -> None:
    """Run the pipeline for ``opt``: from 2 up, LLVM's O2 with loop and SLP vectorization.

    Not O3, and no loop interleaving, unrolling or epilogue vectorization: measured on the
    W3 step's 16 kernels, that halves the compile time (~1.0 s -> ~0.5 s for passes and
    code generation) and the object code, while W1/W3 run as fast (the loops are
    memory-bound or already wide: 8-16 floats per vector op)."""
    pto = llvm.create_pipeline_tuning_options(speed_level=min(opt, 2))
    if opt >= 2:
        pto.loop_vectorization = True
        pto.slp_vectorization = True  # off by default in llvmlite; elementwise code wants it
        pto.loop_interleaving = False
        pto.loop_unrolling = False
    pb = llvm.create_pass_builder(tm, pto)
    mpm = pb.getModulePassManager()  # fresh per module: running one twice aborts
    mpm.run(module, pb)


@dataclass
class CompiledModule:
    """A finalized module: function addresses plus what keeps them alive.

    The IR texts are produced on demand (``ir_source``): a module loaded from the
    compile cache reads them from its entry only when someone asks.
    """

    engine: llvm.ExecutionEngine | None
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
            self._asm = tm.emit_assembly(llvm.parse_assembly(text))
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


# A definition line: the signature, then plain attributes (``nounwind``, ``noinline``...).
_DEFINE = re.compile(r"^define [^\n]*\)(?: [a-z_]+)*$", re.MULTILINE)


def vector_width_attribute() -> str:
    """Ask for 512-bit vectors where the CPU has them: LLVM's tuning for recent Intel
    cores prefers 256 bits, and elementwise math is twice as fast with the full width."""
    init()
    features = llvm.get_host_cpu_features()
    return ' "prefer-vector-width"="512"' if features.get("avx512f") else ""


def module_text(module: ir.Module) -> str:
    """``module``'s IR text for the host, with the attributes llvmlite cannot express."""
    init()
    module.triple = host_triple()
    text = str(module)
    extra = vector_width_attribute()
    if extra:  # llvmlite cannot attach string attributes itself
        text = _DEFINE.sub(lambda m: m.group(0) + extra, text)
    return text


def build_object(text: str, opt: int = 3) -> tuple[bytes, str]:
    """Verify and optimize IR ``text`` at ``opt``; return (object file, optimized IR)."""
    init()
    mod = llvm.parse_assembly(text)
    mod.verify()
    tm = host_target_machine(opt)
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    optimize(mod, tm, opt)
    return tm.emit_object(mod), str(mod)


def load_object(obj: bytes, names: list[str]) -> tuple[llvm.ExecutionEngine, dict[str, int]]:
    """A fresh engine running object file ``obj``; the addresses of ``names`` in it.

    ``obj`` must come from ``build_object`` (or a verified cache entry of one): LLVM
    does not survive a malformed object file.
    """
    init()
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), host_target_machine())
    engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
    engine.finalize_object()
    engine.run_static_constructors()
    addresses = {n: engine.get_function_address(n) for n in names}
    missing = [n for n, a in addresses.items() if not a]
    if missing:
        raise RuntimeError(f"object code defines no {missing}")
    return engine, addresses


def compile_module(module: ir.Module, names: list[str], opt: int = 3) -> CompiledModule:
    """Verify, optimize at ``opt``, JIT-compile ``module``; return addresses of ``names``.

    Code generation runs once, into an object file, which is then loaded; the object
    bytes stay available (``.obj``) for the compile cache.
    """
    text = module_text(module)
    obj, opt_text = build_object(text, opt)
    engine, addresses = load_object(obj, names)
    return CompiledModule(engine, addresses, obj=obj, _texts=(text, opt_text))
