"""Run the W1-W7 benchmarks one after the other and print their tables.

    python benchmarks/run_all.py            # the full settings of each benchmark
    python benchmarks/run_all.py --quick    # fewer repetitions (a few minutes in all)
    python benchmarks/run_all.py w3 w4      # only some of them

Each benchmark runs in its own process (as ``python benchmarks/<script>``); see
benchmarks/README.md for what each measures and how to read the ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (script, extra arguments for --quick)
BENCHMARKS = {
    "w1": ("w1_elemwise.py", ["--repeat", "5"]),
    "w2": ("w2_matmul.py", ["--repeat", "5"]),
    "w3": ("w3_mlp.py", ["--repeat", "10", "--rounds", "3"]),
    "w4": ("w4_tiny.py", ["--repeat", "300", "--rounds", "3"]),
    "w5": ("w5_compile.py", ["--runs", "1"]),
    "w6": ("w6_reduce.py", ["--repeat", "5"]),
    "w7": ("w7_random.py", ["--repeat", "5"]),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("only", nargs="*", help=f"which ones, of {', '.join(BENCHMARKS)} (default: all)")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args()
    unknown = [n for n in args.only if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    failed = []
    for name in args.only or list(BENCHMARKS):
        script, quick = BENCHMARKS[name]
        path = os.path.join(HERE, script)
        if not os.path.exists(path):
            print(f"== {name}: {script} is missing\n")
            continue
        print(f"== {name}: {script}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, path, *(quick if args.quick else [])])
        print(f"   ({time.perf_counter() - t0:.0f} s)\n", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
