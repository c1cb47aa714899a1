"""The graph IR: types, variables, Apply nodes, ops and FunctionGraph."""

from graphc.graph.basic import Apply, Constant, Variable, clone_graph, graph_inputs, io_toposort
from graphc.graph.fgraph import FunctionGraph
from graphc.graph.op import Op
from graphc.graph.type import TensorType
