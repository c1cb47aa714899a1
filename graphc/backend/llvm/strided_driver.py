"""The strided path of every elementwise kernel: one native driver per process.

An elementwise kernel (graphc.backend.llvm.kernel) runs its math in ``<name>.body``
over unit-stride pointers. When its arrays are not all C-contiguous with the output's
shape (a broadcast operand, a transposed view), the kernel hands the whole run to
``graphc_strided_run``: it walks the output's outer dimensions, cuts the innermost
one into blocks of ``BLOCK`` elements, copies operands that are not unit-stride into
small buffers (as NumPy's buffered iteration does), calls the kernel's *thunk*
(``i32 thunk(i64 lo, i64 hi, ptr ptrs)``, which passes ``ptrs[k]`` on to the body)
on each block, and scatters buffered outputs back.

Why one driver rather than a strided loop nest in each kernel: that nest and its copy
helper were about 60% of a small kernel's compile time (LLVM's fixed cost per loop),
while the driver's work per block (pointer arithmetic, a call) is small beside the
block's math. Element sizes and ranks are read at run time instead of being constants.

Kernels call the driver as an external symbol, so their object code stays relocatable
(cacheable). ``bind`` compiles the driver (or loads it from the compile cache) and
registers its address before any object file referring to it is loaded
(graphc.backend.llvm.jit.load_object asks for it); ``prefetch`` starts that compile in
a thread while the first function's kernels are being generated.
"""

from __future__ import annotations

import threading

from llvmlite import ir

from graphc.backend.llvm import jit
from graphc.backend.llvm.irutil import I8, I32, I64, PTR, as_callee

DRIVER = "graphc_strided_run"
BLOCK = 256  # elements per buffered block of the innermost dimension
MAX_ARRAYS = 64  # beyond this many arrays (or dims) the driver refuses: the reference runs
MAX_DIMS = 64
STATUS_REFUSED = 3
OPT = jit.LIGHT  # its loops are bookkeeping; the fill is vectorized by hand
SCALAR_FLAG = 1 << 8  # in an array's meta word: statically one element (the body reads element 0)

_lock = threading.Lock()
_state: dict[str, object] = {}


def signature() -> ir.FunctionType:
    """``i32 (ptr thunk, ptr arrays, i64 narrays, i64 nin, ptr meta, i64 ndim)``: ``arrays``
    holds ``narrays`` PyArrayObject pointers (inputs first, the first output's dims are the
    run's shape), ``meta`` one i64 per array: its item size, or'ed with SCALAR_FLAG."""
    return ir.FunctionType(I32, [PTR, PTR, I64, I64, PTR, I64])


def declare(module: ir.Module) -> ir.Function:
    fn = module.globals.get(DRIVER)
    if fn is None:
        fn = ir.Function(module, signature(), name=DRIVER)
    return fn


# -- the driver's code ----------------------------------------------------------------------
def _c(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _for(b: ir.IRBuilder, n: ir.Value, body, name: str) -> None:
    """``for i in range(n): body(i)`` (any n, also 0)."""
    pre = b.block
    fn = pre.function
    head = fn.append_basic_block(f"{name}.head")
    loop = fn.append_basic_block(f"{name}.body")
    after = fn.append_basic_block(f"{name}.after")
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64, name=name)
    i.add_incoming(_c(0), pre)
    b.cbranch(b.icmp_signed("<", i, n), loop, after)
    b.position_at_end(loop)
    body(i)
    i.add_incoming(b.add(i, _c(1)), b.block)
    b.branch(head)
    b.position_at_end(after)


def _copy_helper(module: ir.Module) -> ir.Function:
    """``void copy(ptr dst, ptr src, i64 n, i64 dst_stride, i64 src_stride, i64 size)``:
    ``n`` elements of ``size`` bytes (1, 2, 4 or 8) between byte-strided places; a
    broadcast value (src stride 0) filling a buffer is one load and a vectorized fill."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, I64, I64, I64]),
                     name="gc.strided_copy")
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    fn.attributes.add("noinline")
    dst, src, n, dst_st, src_st, size = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    done = fn.append_basic_block("done")
    sw = b.switch(size, done)
    for width in (1, 2, 4, 8):
        blk = fn.append_basic_block(f"w{width}")
        sw.add_case(_c(width), blk)
        b.position_at_end(blk)
        ty = ir.IntType(8 * width)
        fill = fn.append_basic_block(f"fill{width}")
        general = fn.append_basic_block(f"general{width}")
        b.cbranch(b.and_(b.icmp_signed("==", src_st, _c(0)), b.icmp_signed("==", dst_st, _c(width))),
                  fill, general)
        b.position_at_end(fill)
        _fill(b, dst, b.load(src, typ=ty), n, width)
        b.branch(done)
        b.position_at_end(general)

        def move(i: ir.Value, ty: ir.Type = ty) -> None:
            v = b.load(b.gep(src, [b.mul(i, src_st)], source_etype=I8), typ=ty)
            b.store(v, b.gep(dst, [b.mul(i, dst_st)], source_etype=I8))

        _for(b, n, move, f"move{width}")
        b.branch(done)
    b.position_at_end(done)
    b.ret_void()
    return fn


VECTOR_BYTES = 64


def _fill(b: ir.IRBuilder, dst: ir.Value, value: ir.Value, n: ir.Value, width: int) -> None:
    """``dst[0:n] = value`` with 64-byte vector stores, then element stores for the tail
    (written out: the light pipeline has no loop vectorizer)."""
    lanes = VECTOR_BYTES // width
    vty = ir.VectorType(value.type, lanes)
    vec = b.insert_element(ir.Constant(vty, ir.Undefined), value, ir.Constant(I32, 0))
    zeros = ir.Constant(ir.VectorType(I32, lanes), [0] * lanes)
    vec = b.shuffle_vector(vec, ir.Constant(vty, ir.Undefined), zeros)
    chunks = b.udiv(n, _c(lanes))

    def put_vector(i: ir.Value) -> None:
        b.store(vec, b.gep(dst, [b.mul(i, _c(VECTOR_BYTES))], source_etype=I8), align=1)

    _for(b, chunks, put_vector, f"vfill{width}")
    tail = b.mul(chunks, _c(lanes))
    _for(b, b.sub(n, tail), lambda i: b.store(value, b.gep(dst, [b.add(tail, i)], source_etype=value.type)),
         f"tfill{width}")


def build_driver(module: ir.Module) -> None:
    """Add ``graphc_strided_run`` (see ``signature``) to ``module``."""
    from graphc.backend.llvm.kernel import OFF_DATA, OFF_DIMS, OFF_STRIDES

    copy = _copy_helper(module)
    fn = ir.Function(module, signature(), name=DRIVER)
    fn.attributes.add("nounwind")
    thunk, arrays, narrays, nin, meta, ndim = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    thunk_ty = ir.FunctionType(I32, [I64, I64, PTR])

    def field(obj: ir.Value, off: int) -> ir.Value:
        return b.load(b.gep(obj, [_c(off)], source_etype=I8), typ=PTR)

    def at(p: ir.Value, i: ir.Value, ty: ir.Type = I64) -> ir.Value:
        return b.gep(p, [i], source_etype=ty)

    def get(p: ir.Value, i: ir.Value, ty: ir.Type = I64) -> ir.Value:
        return b.load(at(p, i, ty), typ=ty)

    ok = fn.append_basic_block("ok")
    refuse = fn.append_basic_block("refuse")
    fits = b.and_(b.icmp_signed("<=", narrays, _c(MAX_ARRAYS)), b.icmp_signed("<=", ndim, _c(MAX_DIMS)))
    b.cbranch(b.and_(fits, b.icmp_signed("<", nin, narrays)), ok, refuse)
    b.position_at_end(refuse)
    b.ret(ir.Constant(I32, STATUS_REFUSED))
    b.position_at_end(ok)

    # Stack areas sized by this call's arrays and rank (allocated once, outside any loop):
    # a small frame, where fixed maximal ones would spread a call's few words over pages.
    status = b.alloca(I32, name="status")
    b.store(ir.Constant(I32, 0), status)
    ptrs = b.alloca(PTR, size=narrays, name="ptrs")
    data = b.alloca(PTR, size=narrays, name="data")
    offs = b.alloca(I64, size=narrays, name="offs")
    idx = b.alloca(I64, size=b.add(ndim, _c(1)), name="idx")
    estr = b.alloca(I64, size=b.add(b.mul(narrays, ndim), _c(1)), name="estr")

    odims = field(get(arrays, nin, PTR), OFF_DIMS)

    def per_array(k: ir.Value) -> None:
        arr = get(arrays, k, PTR)
        b.store(field(arr, OFF_DATA), at(data, k, PTR))
        b.store(_c(0), at(offs, k))
        dims, strides = field(arr, OFF_DIMS), field(arr, OFF_STRIDES)

        def per_dim(d: ir.Value) -> None:
            broadcast = b.icmp_signed("==", get(dims, d), _c(1))
            b.store(b.select(broadcast, _c(0), get(strides, d)), at(estr, b.add(b.mul(k, ndim), d)))

        _for(b, ndim, per_dim, "dim")

    _for(b, narrays, per_array, "arr")

    scalar_run = fn.append_basic_block("rank0")
    ranked = fn.append_basic_block("ranked")
    done = fn.append_basic_block("done")
    b.cbranch(b.icmp_signed("==", ndim, _c(0)), scalar_run, ranked)
    b.position_at_end(scalar_run)
    _for(b, narrays, lambda k: b.store(get(data, k, PTR), at(ptrs, k, PTR)), "p0")
    b.store(_call_thunk(b, thunk, thunk_ty, [_c(0), _c(1), ptrs]), status)
    b.branch(done)

    b.position_at_end(ranked)
    last = b.sub(ndim, _c(1))
    length = get(odims, last)
    _for(b, last, lambda d: b.store(_c(0), at(idx, d)), "zero")
    outer_p = b.alloca(I64, name="outer")
    b.store(_c(1), outer_p)
    _for(b, last, lambda d: b.store(b.mul(b.load(outer_p, typ=I64), get(odims, d)), outer_p), "outer")
    outer = b.load(outer_p, typ=I64)

    # What each array does along the innermost dimension, the same for every row: read in
    # place (unit stride), stay at element 0 (statically one element), or go through a buffer.
    inner = b.alloca(I64, size=narrays, name="inner")
    sizes = b.alloca(I64, size=narrays, name="sizes")
    mode = b.alloca(I64, size=narrays, name="mode")  # 0 buffered, 1 in place, 2 fixed
    buffered = b.alloca(ir.IntType(1), name="buffered")
    carry = b.alloca(I64, name="carry")  # here, not in the row loop: an alloca there grows the stack
    b.store(ir.Constant(ir.IntType(1), 0), buffered)

    def classify(k: ir.Value) -> None:
        word = get(meta, k)
        size = b.and_(word, _c(0xFF))
        st = get(estr, b.add(b.mul(k, ndim), last))
        fixed = b.icmp_unsigned("!=", b.and_(word, _c(SCALAR_FLAG)), _c(0))
        unit = b.icmp_signed("==", st, size)
        b.store(st, at(inner, k))
        b.store(size, at(sizes, k))
        b.store(b.select(fixed, _c(2), b.select(unit, _c(1), _c(0))), at(mode, k))
        b.store(b.or_(b.load(buffered, typ=ir.IntType(1)), b.not_(b.or_(fixed, unit))), buffered)

    _for(b, narrays, classify, "classify")
    # Without buffers a row is one call, however long.
    block_len = b.select(b.load(buffered, typ=ir.IntType(1)), _c(BLOCK), b.select(
        b.icmp_signed(">", length, _c(0)), length, _c(1)))
    nblocks = b.udiv(b.add(length, b.sub(block_len, _c(1))), block_len)

    # Matrices with every row in place (a bias row broadcast down a batch, a slice of rows):
    # a tight loop over rows, a pointer per array and one call each, nothing more.
    plain = fn.append_basic_block("plain_rows")
    general = fn.append_basic_block("general")
    b.cbranch(b.and_(b.icmp_signed("==", ndim, _c(2)), b.not_(b.load(buffered, typ=ir.IntType(1)))),
              plain, general)
    b.position_at_end(plain)

    def plain_row(i: ir.Value) -> None:
        def point(k: ir.Value) -> None:
            step = get(estr, b.mul(k, _c(2)))
            b.store(b.gep(get(data, k, PTR), [b.mul(i, step)], source_etype=I8), at(ptrs, k, PTR))

        _for(b, narrays, point, "point")
        rc = _call_thunk(b, thunk, thunk_ty, [_c(0), length, ptrs])
        b.store(b.or_(b.load(status, typ=I32), rc), status)

    _for(b, get(odims, _c(0)), plain_row, "prow")
    b.branch(done)
    b.position_at_end(general)
    bufs = b.alloca(ir.ArrayType(I64, BLOCK), size=narrays, name="bufs")
    bufs.align = 64

    def buffer_of(k: ir.Value) -> ir.Value:
        return b.bitcast(b.gep(bufs, [k], source_etype=ir.ArrayType(I64, BLOCK)), PTR)

    def row(_: ir.Value) -> None:
        def block(bi: ir.Value) -> None:
            first = b.mul(bi, block_len)
            left = b.sub(length, first)
            m = b.select(b.icmp_signed("<", left, block_len), left, block_len)

            def place(k: ir.Value) -> ir.Value:
                return b.gep(get(data, k, PTR), [b.add(get(offs, k), b.mul(first, get(inner, k)))],
                             source_etype=I8)

            def gather(k: ir.Value) -> None:
                how = get(mode, k)
                here = place(k)
                b.store(b.select(b.icmp_signed("==", how, _c(1)), here,
                                 b.select(b.icmp_signed("==", how, _c(2)), get(data, k, PTR), buffer_of(k))),
                        at(ptrs, k, PTR))
                with b.if_then(b.and_(b.icmp_signed("==", how, _c(0)), b.icmp_signed("<", k, nin))):
                    size = get(sizes, k)
                    b.call(copy, [buffer_of(k), here, m, size, get(inner, k), size])

            _for(b, narrays, gather, "gather")
            rc = _call_thunk(b, thunk, thunk_ty, [_c(0), m, ptrs])
            b.store(b.or_(b.load(status, typ=I32), rc), status)

            def scatter(j: ir.Value) -> None:
                k = b.add(nin, j)
                with b.if_then(b.icmp_signed("==", get(mode, k), _c(0))):
                    size = get(sizes, k)
                    b.call(copy, [place(k), buffer_of(k), m, get(inner, k), size, size])

            _for(b, b.sub(narrays, nin), scatter, "scatter")

        _for(b, nblocks, block, "block")
        _advance(b, fn, carry, idx, offs, estr, odims, narrays, ndim, last)

    _for(b, outer, row, "row")
    b.branch(done)
    b.position_at_end(done)
    b.ret(b.load(status, typ=I32))


def _call_thunk(b: ir.IRBuilder, thunk: ir.Value, ty: ir.FunctionType, args: list[ir.Value]) -> ir.Value:
    # A fresh no-op cast per call site: as_callee retypes the value it is given.
    return b.call(as_callee(b.bitcast(thunk, PTR), ty), args)


def _advance(b: ir.IRBuilder, fn: ir.Function, d_p: ir.Value, idx: ir.Value, offs: ir.Value, estr: ir.Value,
             odims: ir.Value, narrays: ir.Value, ndim: ir.Value, last: ir.Value) -> None:
    """The odometer over the outer dimensions: the next row's byte offset of every array."""
    b.store(b.sub(last, _c(1)), d_p)
    head = fn.append_basic_block("carry.head")
    step = fn.append_basic_block("carry.step")
    wrap = fn.append_basic_block("carry.wrap")
    after = fn.append_basic_block("carry.after")
    b.branch(head)
    b.position_at_end(head)
    d = b.load(d_p, typ=I64)
    b.cbranch(b.icmp_signed(">=", d, _c(0)), step, after)
    b.position_at_end(step)
    i = b.add(b.load(b.gep(idx, [d], source_etype=I64), typ=I64), _c(1))
    b.store(i, b.gep(idx, [d], source_etype=I64))

    def bump(k: ir.Value) -> None:
        p = b.gep(offs, [k], source_etype=I64)
        b.store(b.add(b.load(p, typ=I64), b.load(b.gep(estr, [b.add(b.mul(k, ndim), d)], source_etype=I64),
                                                typ=I64)), p)

    _for(b, narrays, bump, "bump")
    b.cbranch(b.icmp_signed("<", i, b.load(b.gep(odims, [d], source_etype=I64), typ=I64)), after, wrap)
    b.position_at_end(wrap)

    def rewind(k: ir.Value) -> None:
        p = b.gep(offs, [k], source_etype=I64)
        s = b.load(b.gep(estr, [b.add(b.mul(k, ndim), d)], source_etype=I64), typ=I64)
        b.store(b.sub(b.load(p, typ=I64), b.mul(i, s)), p)

    _for(b, narrays, rewind, "rewind")
    b.store(_c(0), b.gep(idx, [d], source_etype=I64))
    b.store(b.sub(d, _c(1)), d_p)
    b.branch(head)
    b.position_at_end(after)


# -- compiling and binding it once per process ---------------------------------------------------
def _text() -> str:
    module = ir.Module(name="graphc_strided")
    build_driver(module)
    return jit.module_text(module)


def _key() -> str:
    from graphc.backend.llvm import cache

    return cache.module_key([DRIVER], OPT)


def prefetch() -> None:
    """Start compiling the driver in a thread if it is neither bound nor in the compile cache
    (the first function's kernels are generated meanwhile)."""
    if "addr" in _state or "thread" in _state:
        return
    from graphc.backend.llvm import cache

    path = cache.entry_path(_key())
    if path is not None and path.exists():
        return
    with _lock:
        if "addr" in _state or "thread" in _state:
            return
        text = _text()
        result: dict[str, object] = {"text": text}

        def work() -> None:
            try:
                result["built"] = jit.build_object(text, OPT, unlocked=True)
            except Exception as exc:  # noqa: BLE001 - bind() compiles again and raises
                result["error"] = exc

        thread = threading.Thread(target=work, name="graphc-strided-driver", daemon=True)
        _state["thread"], _state["result"] = thread, result
        thread.start()


def bind() -> int:
    """The driver's address, registered as the symbol ``graphc_strided_run`` (compiled, or
    loaded from the compile cache, once per process)."""
    addr = _state.get("addr")
    if addr is not None:
        return addr  # type: ignore[return-value]
    with _lock:
        if "addr" in _state:
            return _state["addr"]  # type: ignore[return-value]
        import llvmlite.binding as llvm

        from graphc.backend.llvm import cache

        _state["binding"] = True  # load_object below must not ask for the driver again
        try:
            key = _key()
            entry = cache.load(key)
            if entry is not None and entry.names == [DRIVER]:
                engine, addresses = jit.load_object(entry.obj, [DRIVER])
            else:
                built, text = None, None
                thread = _state.pop("thread", None)
                if thread is not None:
                    thread.join()  # type: ignore[attr-defined]
                    result = _state.pop("result")
                    built, text = result.get("built"), result["text"]  # type: ignore[union-attr]
                if built is None:
                    text = _text()
                    built = jit.build_object(text, OPT)
                obj, opt_text = built  # type: ignore[misc]
                engine, addresses = jit.load_object(obj, [DRIVER])
                cache.store(cache.Entry(key, [DRIVER], {}, obj, cache.pack_ir(text, opt_text), []))
            llvm.add_symbol(DRIVER, addresses[DRIVER])
            _state["engine"] = engine  # keeps the code alive
            _state["addr"] = addresses[DRIVER]
        finally:
            _state.pop("binding", None)
        return _state["addr"]  # type: ignore[return-value]


def needed_by(obj: bytes) -> bool:
    """Whether object file ``obj`` refers to the driver and it is not bound yet."""
    return "addr" not in _state and "binding" not in _state and DRIVER.encode() in obj
