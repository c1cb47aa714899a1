# %% [markdown]
# # 01 · graphc basics: symbols, functions, gradients, and what the compiler makes of them
#
# graphc works like Theano: you first **describe** a computation with symbolic variables, then
# **compile** the description into a function, and only then **run** it on numbers. Because the
# whole computation is known before anything runs, graphc can differentiate it symbolically,
# simplify it, fuse many small operations into one loop, and generate native code for that
# loop with LLVM.
#
# This notebook walks through the pipeline on tiny examples:
#
# 1. symbolic variables and `graphc.function`;
# 2. `graphc.grad`: derivatives are graphs too;
# 3. shared variables and updates: a training step in one compiled call;
# 4. looking inside: `debugprint`, the graph before and after the rewrites, and the LLVM IR
#    of a fused kernel.

# %%
import os
import re
import shutil
import tempfile
from collections import Counter

import numpy as np
from IPython.display import SVG, display

import graphc
import graphc.tensor as T
from graphc.printing import debugprint, pp

QUICK = os.environ.get("GRAPHC_NOTEBOOK_QUICK") == "1"  # CI runs the notebooks shrunk
print("graphc", graphc.__version__, "| floatX =", graphc.config.floatX)

# %% [markdown]
# ## 1. Symbolic variables and functions
#
# `T.dvector('x')` is not an array: it is a *symbol* standing for any float64 vector. Arithmetic
# on symbols builds a graph; `pp` prints it back as a formula. `graphc.function(inputs, output)`
# compiles the graph into a callable that takes NumPy arrays.

# %%
x = T.dvector("x")
y = (x ** 2).sum()
print("y =", pp(y), "  type:", y.type)

f = graphc.function([x], y)
print("f([1, 2, 3]) =", f([1.0, 2.0, 3.0]))

# %% [markdown]
# ## 2. Gradients are graphs too
#
# `graphc.grad(cost, wrt)` walks the graph backwards and returns a *new symbolic expression* for
# the derivative, which compiles like any other. For $y = \sum_i x_i^2$ the gradient is $2x$.
# As built by reverse-mode differentiation the expression is verbose (it broadcasts the output
# gradient back to the shape of `x`); the rewrites clean that up when it is compiled.

# %%
gy = graphc.grad(y, x)
print("dy/dx =", pp(gy))
df = graphc.function([x], gy)
print("df([1, 2, 3]) =", df([1.0, 2.0, 3.0]))
np.testing.assert_allclose(df([1.0, 2.0, 3.0]), [2.0, 4.0, 6.0])

# %% [markdown]
# ## 3. Shared variables and updates: a whole training step in one call
#
# Model parameters live in **shared variables**: values that persist between calls and that
# compiled functions read without being passed them. `updates=[(W, new_W), ...]` tells a
# function to overwrite them after each call. That is all a gradient-descent step is.
#
# Here: softmax regression (the example of graphc's design page) on four Gaussian blobs in 20
# dimensions.

# %%
rng = np.random.default_rng(0)
n_features, n_classes = 20, 4
centres = rng.normal(0.0, 3.0, size=(n_classes, n_features))
labels = rng.integers(0, n_classes, size=2000).astype("int32")
points = (centres[labels] + rng.normal(size=(2000, n_features))).astype("float32")

X = T.matrix("X")     # float32 (graphc.config.floatX)
Y = T.ivector("Y")
W = graphc.shared(np.zeros((n_features, n_classes), "float32"), name="W")
b = graphc.shared(np.zeros(n_classes, "float32"), name="b")
p = T.nnet.softmax(T.dot(X, W) + b)
loss = T.nnet.categorical_crossentropy(p, Y).mean()
gW, gb = graphc.grad(loss, [W, b])
train = graphc.function([X, Y], loss, updates=[(W, W - 0.1 * gW), (b, b - 0.1 * gb)], name="train")
predict = graphc.function([X], T.argmax(p, axis=1), name="predict")

losses = []
for _epoch in range(10):
    losses += [float(train(points[i:i + 100], labels[i:i + 100])) for i in range(0, 2000, 100)]
accuracy = float(np.mean(predict(points) == labels))
print(f"loss: first batch {losses[0]:.3f}, last batch {losses[-1]:.3f}; accuracy {accuracy:.3f}")

# %% [markdown]
# `debugprint` shows what was actually compiled: the optimized graph of the training step, its
# output (the loss) and the two updates. Nodes already printed are referred to by their id
# (`id A`), and shared variables are marked `[shared]`.

# %%
debugprint(train)

# %% [markdown]
# ## 4. What the rewrites do
#
# Before code generation, graphc rewrites the graph: it merges duplicated subexpressions,
# removes no-ops such as `* 1`, replaces numerically fragile forms (`log(1 + u)` becomes
# `log1p(u)`), and **fuses** chains of elementwise operations into one node, so the data is
# traversed once instead of once per operation.
#
# A deliberately clumsy expression: `exp(x)` appears twice, there is a `* 1`, and a
# `log(1 + exp(x))`.

# %%
a, c, d = T.fvector("a"), T.fvector("c"), T.fvector("d")
out = T.log(1 + T.exp(a)) * c + T.exp(a) * c * 1 + T.tanh(d)

unoptimized = graphc.function([a, c, d], out, mode="NONE")  # no rewrites at all
fused = graphc.function([a, c, d], out)                      # the default, FAST_RUN
print("as written:", pp(out))
print("optimized: ", pp(fused))
print(f"nodes: {len(unoptimized.fgraph.toposort())} before, {len(fused.fgraph.toposort())} after")
print("\n".join(fused.rewrite_log[-3:]))

# %% [markdown]
# The same two graphs as pictures. `graphc.printing.pydotprint` renders through Graphviz when
# its `dot` program is installed (`apt-get install graphviz`); without it, it writes the DOT
# source instead, which we then show as text. Green boxes are inputs, blue ones outputs; in the
# optimized graph the fused node is drawn as a cluster holding its scalar sub-graph.

# %%
def show_graph(obj, title: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        written = graphc.printing.pydotprint(obj, outfile=os.path.join(tmp, "graph.svg"))
        print(title)
        if written.endswith(".svg"):
            display(SVG(filename=written))
        else:  # no Graphviz here: the DOT text is the picture's source
            print(open(written).read())


print("Graphviz:", shutil.which("dot") or "not installed (DOT text below)")
show_graph(out, "before the rewrites (the graph as written):")
show_graph(fused, "after the rewrites (what runs):")

# %% [markdown]
# ## 5. The generated code
#
# In the default mode the fused node runs as one native kernel that graphc generated as LLVM IR
# and compiled with LLVM's optimizer for this CPU. A compiled function lists its kernels with
# `fn.native_kernels()` and shows their IR with `fn.llvm_ir(...)` (and their assembly with
# `fn.asm(...)`). Here is the kernel's IR as graphc emitted it (the beginning: argument checks
# before the loop), and then what the optimizer turned its arithmetic into: **vector**
# instructions (`<8 x float>`, `<16 x float>`, ... depending on the CPU), processing several
# elements per instruction.

# %%
(node, name), = fused.native_kernels()  # (node, kernel name) for each node that runs natively
print(f"{node.op} runs as the native kernel {name}\n")

module = fused.llvm_ir(optimized=False)  # the module as graphc generated it, before LLVM's -O3
kernel = re.search(rf'^define [^\n]*@"?{name}"?\(.*?^}}', module, flags=re.M | re.S).group(0)
helpers = re.findall(r'^define internal [^\n]*@"?([\w.]+)"?\(', module, flags=re.M)
print(f"vector math it inlines, also written in IR by graphc: {helpers}\n")
print("\n".join(kernel.splitlines()[:25]), "\n  ...")

optimized = fused.llvm_ir(name)  # the same kernel after LLVM's optimizer
vector_ops = Counter(m.group(0) for m in re.finditer(
    r"\b(fmul|fadd|fsub|fdiv|select|fcmp \w+) (fast )?<\d+ x float>", optimized))
print(f"\nvector arithmetic in the optimized kernel ({len(optimized.splitlines())} lines of IR):")
for op, count in vector_ops.most_common(8):
    print(f"  {count:4d} x {op}")
assert vector_ops, "no vector instructions in the optimized kernel"


# %% [markdown]
# ## Result to check
#
# The fused native function must agree with NumPy (to float32 precision), and the training step
# above must have learned the blobs.

# %%
va, vc, vd = (np.random.default_rng(k).standard_normal(1000).astype("float32") for k in range(3))
expected = np.log1p(np.exp(va)) * vc + np.exp(va) * vc + np.tanh(vd)
np.testing.assert_allclose(fused(va, vc, vd), expected, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(unoptimized(va, vc, vd), expected, rtol=1e-5, atol=1e-5)
assert len(fused.fgraph.toposort()) < len(unoptimized.fgraph.toposort())
assert accuracy > 0.95, accuracy
print(f"OK: fused kernel == NumPy; {len(unoptimized.fgraph.toposort())} nodes -> "
      f"{len(fused.fgraph.toposort())}; blob accuracy {accuracy:.3f}")
