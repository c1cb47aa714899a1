"""Graph rewrites: the pass manager and the passes ``graphc.function`` runs.

Phases, in order: ``merge`` (CSE), ``canonicalize`` (with constant folding),
``stabilize``, ``specialize``, ``late_merge``, ``fusion``. ``graphc.Mode``'s
``including``/``excluding`` name rewrites, phases or tags; see
:func:`available_rewrites`.
"""

from graphc.rewrite.framework import (
    DB,
    GlobalRewrite,
    LocalRewrite,
    RewriteLog,
    RewriteTypeError,
    register_global,
    register_local,
    rewrite_graph,
)

# Phase order is fixed here, before the modules register into them.
for _name, _kind in (("merge", "global"), ("canonicalize", "local"), ("stabilize", "local"),
                     ("specialize", "local"), ("late_merge", "global"), ("fusion", "global")):
    DB.phase(_name, _kind)

from graphc.rewrite import (  # noqa: E402  (registration order matters)
    canonicalize,
    canonicalize_shape,
    constant_folding,
    fusion,
    merge,
    specialize,
    stabilize,
    tensordot,
)
from graphc.rewrite.fused import Fused  # noqa: E402
from graphc.rewrite.gemm import Gemm  # noqa: E402


def available_rewrites() -> dict[str, list[str]]:
    """Phase name -> names of the rewrites it runs, in order."""
    return {p.name: [r.name for r in p.rewrites] for p in DB.phases}


__all__ = [
    "DB", "Fused", "Gemm", "GlobalRewrite", "LocalRewrite", "RewriteLog", "RewriteTypeError",
    "register_global", "register_local", "rewrite_graph", "available_rewrites",
]
