# %% [markdown]
# # 07 · Performance: graphc against NumPy (and JAX / PyTorch when installed)
#
# This notebook runs the workloads of `benchmarks/` in one process and draws the ratios. Every
# figure is measured here, on this machine, in this run; the machine is described first,
# because speed-ups only mean something next to the hardware that produced them.
#
# - **W1, elementwise**: `exp(x) * y + tanh(z)` on float32 vectors. NumPy makes four passes
#   over memory and three temporaries; graphc fuses the expression into one native loop.
# - **Training the tutorials' models**: `fit` of the regression, classification and digits
#   models through the Keras-like frontend, against the same networks trained by a
#   hand-written NumPy loop and (when installed) Keras 3 on JAX.
#
# Ratios are *NumPy's time divided by the contender's*: above 1 means faster than NumPy.

# %%
import os
import platform
import sys
import time
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm
import matplotlib.pyplot as plt
import numpy as np

import graphc

QUICK = os.environ.get("GRAPHC_NOTEBOOK_QUICK") == "1"  # CI runs the notebooks shrunk
sys.path.insert(0, str(Path.cwd().parent / "benchmarks"))  # the notebook runs in notebooks/
import keras_like_fit  # noqa: E402
import w1_elemwise  # noqa: E402

# %% [markdown]
# ## The machine

# %%
def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas() -> str:
    try:
        from threadpoolctl import threadpool_info
        libs = [f"{i['internal_api']} {i.get('version') or ''} ({i['num_threads']} threads)"
                for i in threadpool_info() if i["user_api"] == "blas"]
        return ", ".join(libs) or "unknown"
    except ImportError:
        return "unknown (pip install threadpoolctl to see)"


machine = {
    "CPU": cpu_name(),
    "LLVM's name for it": f"{llvm.get_host_cpu_name()}"
                          f"{' (AVX-512)' if llvm.get_host_cpu_features().get('avx512f') else ''}",
    "cores": os.cpu_count(),
    "OS": f"{platform.system()} {platform.release()}",
    "Python": platform.python_version(),
    "NumPy": f"{np.__version__}, BLAS: {blas()}",
    "llvmlite / LLVM": f"{llvmlite.__version__} / {'.'.join(map(str, llvm.llvm_version_info))}",
    "graphc": graphc.__version__,
    "load average (1 min) at start": f"{os.getloadavg()[0]:.2f}",
}
for key, value in machine.items():
    print(f"{key:31s} {value}")

# %% [markdown]
# ## W1: a fused elementwise expression
#
# Median of repeated calls after a warm-up call (which also compiles the JITs). graphc's
# result is checked against NumPy's before timing.

# %%
sizes = [100_000] if QUICK else [1_000_000, 10_000_000]
repeat = 5 if QUICK else 15
rng = np.random.default_rng(0)
w1 = {}  # (size, contender) -> seconds
for size in sizes:
    x, y, z = (rng.standard_normal(size).astype("float32") for _ in range(3))
    graphc_call, compile_s = w1_elemwise.graphc_fn(x, y, z)
    contenders = {"NumPy": w1_elemwise.numpy_plain(x, y, z),
                  "NumPy (out=)": w1_elemwise.numpy_out(x, y, z),
                  "graphc": graphc_call}
    contenders.update(w1_elemwise.peers(x, y, z))
    for name, fn in contenders.items():
        w1[size, name] = w1_elemwise.timeit(fn, repeat)
    print(f"{size:>11,d} elements (graphc compiled it in {compile_s * 1e3:.0f} ms)")
    for name in contenders:
        t = w1[size, name]
        print(f"    {name:14s} {t * 1e3:9.3f} ms   {w1[size, 'NumPy'] / t:5.2f}x NumPy")

# %% [markdown]
# ## Training the tutorials' models
#
# Time per epoch (median of the epochs after the first, so compiling is not counted), same
# data, batch size, optimizer and number of epochs for every runner. Keras 3 runs on JAX when
# it is installed (not in the CI run, where importing and compiling it would dominate).

# %%
problems = [p for p in (keras_like_fit.regression_toy(), keras_like_fit.classification_toy(),
                        keras_like_fit.digits()) if p is not None]
if QUICK:
    problems = [dict(p, x=p["x"][:1000], y=p["y"][:1000], epochs=2) for p in problems[:1]]
fit_epoch = {}  # (problem, runner) -> seconds per epoch
for p in problems:
    runs = {"graphc": keras_like_fit.run_graphc(p), "NumPy by hand": keras_like_fit.run_numpy(p)}
    if not QUICK:
        keras_times = keras_like_fit.run_keras(p)
        if keras_times is not None:
            runs["Keras 3 (JAX)"] = keras_times
    print(p["name"])
    for runner, times in runs.items():
        fit_epoch[p["name"], runner] = float(np.median(times[1:] or times))
        print(f"    {runner:14s} {fit_epoch[p['name'], runner]:8.3f} s per epoch "
              f"({sum(times):.2f} s for {len(times)} epochs)")

# %% [markdown]
# ## The chart
#
# Speed relative to NumPy (plain NumPy for W1, the hand-written NumPy loop for training),
# on a log scale: NumPy is the line at 1x, bars to its right are faster, bars to its left
# slower.

# %%
COLORS = {"graphc": "tab:green", "NumPy": "grey", "NumPy by hand": "grey", "NumPy (out=)": "silver",
          "JAX (jit)": "tab:red", "Keras 3 (JAX)": "tab:red", "PyTorch": "tab:orange",
          "PyTensor": "tab:purple"}


def bars(ax, results, baseline, title):
    """Horizontal bars growing from 1x: right = faster than the baseline, left = slower."""
    groups = list(dict.fromkeys(g for g, _ in results))  # in order of first appearance
    names = list(dict.fromkeys(n for _, n in results if n != baseline))  # the baseline: the 1x line
    height = 0.8 / len(names)
    for k, name in enumerate(names):
        rows = [(i, results[g, baseline] / results[g, name]) for i, g in enumerate(groups)
                if (g, name) in results]
        pos = np.array([i for i, _ in rows]) + k * height
        ratios = np.array([r for _, r in rows])
        ax.barh(pos, ratios - 1, left=1, height=height, label=name, color=COLORS.get(name))
        for p, r in zip(pos, ratios):
            ax.text(r, p, f" {r:.2f}x " if r >= 1 else f" {r:.2f}x ", va="center", fontsize=8,
                    ha="left" if r >= 1 else "right")
    ax.set_yticks(np.arange(len(groups)) + 0.4 - height / 2, [str(g) for g in groups])
    ax.invert_yaxis()  # first group and first contender on top, as in the tables above
    ax.axvline(1, color="black", linewidth=0.8)
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    ax.set_xlim(min(lo, 0.5) / 1.6, max(hi, 2) * 1.6)  # room for the labels
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best")


fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 3 + 1.3 * (len(sizes) + len(problems))))
bars(ax1, {(f"{s:,} elements", n): t for (s, n), t in w1.items()}, "NumPy",
     "W1: exp(x)*y + tanh(z), float32 — speed vs NumPy")
bars(ax2, fit_epoch, "NumPy by hand", "fit, time per epoch — speed vs a hand-written NumPy loop")
fig.suptitle(f"{machine['CPU']}, {machine['cores']} cores", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Result to check
#
# The fused kernel must beat NumPy's four passes on large vectors. (The CI run only checks
# that everything runs: its sizes are too small, and its machine too busy, for timings.)

# %%
largest = sizes[-1]
w1_ratio = w1[largest, "NumPy"] / w1[largest, "graphc"]
print(f"W1 at {largest:,} elements: graphc {w1_ratio:.2f}x NumPy "
      f"(measured {time.strftime('%Y-%m-%d')} on {machine['CPU']})")
if not QUICK:
    assert w1_ratio > 1, w1_ratio
print("OK")
