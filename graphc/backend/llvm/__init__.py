"""The LLVM backend: elementwise kernels from scalar expression DAGs, vector math, executor.

``LLVMProgram`` (graphc.backend.llvm.executor) runs a FunctionGraph with native
kernels where it can and the reference ``perform`` elsewhere.
"""
