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
from dataclasses import dataclass, field

import llvmlite.binding as llvm
from llvmlite import ir

_lock = threading.Lock()
_initialized = False


def _init() -> None:
    global _initialized
    with _lock:
        if not _initialized:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            llvm.initialize_native_asmparser()
            _initialized = True


def host_target_machine(opt: int = 3) -> llvm.TargetMachine:
    """A target machine for this CPU (its name and feature string), PIC, JIT code model."""
    _init()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=opt,
        reloc="pic",
        codemodel="jitdefault",
    )


def host_triple() -> str:
    _init()
    return llvm.get_process_triple()


def optimize(module: llvm.ModuleRef, tm: llvm.TargetMachine, opt: int = 3) -> None:
    """Run the standard pipeline at ``opt`` with loop and SLP vectorization on."""
    pto = llvm.create_pipeline_tuning_options(speed_level=opt)
    if opt >= 2:
        pto.loop_vectorization = True
        pto.slp_vectorization = True  # off by default in llvmlite; elementwise code wants it
    pb = llvm.create_pass_builder(tm, pto)
    mpm = pb.getModulePassManager()  # fresh per module: running one twice aborts
    mpm.run(module, pb)


@dataclass
class CompiledModule:
    """A finalized module: function addresses plus what keeps them alive."""

    engine: llvm.ExecutionEngine
    ir_text: str
    opt_ir_text: str
    addresses: dict[str, int] = field(default_factory=dict)

    def asm(self) -> str:
        tm = host_target_machine()
        return tm.emit_assembly(llvm.parse_assembly(self.opt_ir_text))


_DEFINE = re.compile(r"^(define [^\n]*\)) nounwind$", re.MULTILINE)


def vector_width_attribute() -> str:
    """Ask for 512-bit vectors where the CPU has them: LLVM's tuning for recent Intel
    cores prefers 256 bits, and elementwise math is twice as fast with the full width."""
    _init()
    features = llvm.get_host_cpu_features()
    return ' "prefer-vector-width"="512"' if features.get("avx512f") else ""


def compile_module(module: ir.Module, names: list[str], opt: int = 3) -> CompiledModule:
    """Verify, optimize at ``opt``, JIT-compile ``module``; return addresses of ``names``."""
    _init()
    module.triple = host_triple()
    text = str(module)
    extra = vector_width_attribute()
    if extra:  # llvmlite cannot attach string attributes itself
        text = _DEFINE.sub(lambda m: m.group(0) + extra, text)
    mod = llvm.parse_assembly(text)
    mod.verify()
    tm = host_target_machine(opt)
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    optimize(mod, tm, opt)
    opt_text = str(mod)
    engine = llvm.create_mcjit_compiler(mod, tm)
    engine.finalize_object()
    engine.run_static_constructors()
    addresses = {n: engine.get_function_address(n) for n in names}
    return CompiledModule(engine, text, opt_text, addresses)
