"""Which nodes of an exported encoder graph INT8 may touch, found from the graph alone so they hold for both
exporters: the fbank (everything feeding the log-mel ``Log``), weight Conv/MatMul/Gemm (one input is a
constant) and activation-by-activation MatMuls (attention's QK^T and AV)."""

from __future__ import annotations

from dataclasses import dataclass

import onnx

QUANTIZABLE_OPS = ("Conv", "MatMul", "Gemm")


@dataclass
class GraphRoles:
    fbank: list[str]  # Conv/MatMul nodes of the fbank (DFT conv, mel matmul): stay float
    weight: list[str]  # Conv/MatMul/Gemm with a constant weight outside the fbank: INT8 candidates
    activation_matmul: list[str]  # MatMuls of two activations (attention): stay float


def _constants(graph: onnx.GraphProto) -> set[str]:
    names = {init.name for init in graph.initializer}
    names |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    # A weight transposed or cast by a constant-only node is still a constant.
    changed = True
    while changed:
        changed = False
        for node in graph.node:
            if node.op_type in ("Transpose", "Cast", "Reshape", "Identity") and node.input and \
                    all(i in names for i in node.input if i) and not set(node.output) <= names:
                names |= set(node.output)
                changed = True
    return names


def _ancestors(graph: onnx.GraphProto, targets: list[onnx.NodeProto]) -> set[str]:
    producer = {out: node for node in graph.node for out in node.output}
    seen: set[str] = set()
    stack = [i for node in targets for i in node.input]
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        stack.extend(node.input)
    return seen


def graph_roles(model: onnx.ModelProto) -> GraphRoles:
    """Classify the Conv/MatMul/Gemm nodes of an encoder graph (node names must be unique)."""
    graph = model.graph
    logs = [node for node in graph.node if node.op_type == "Log"]
    if not logs:
        raise ValueError("no Log node: this graph has no log-mel fbank, is it a USAD encoder?")
    fbank_nodes = _ancestors(graph, logs)
    constants = _constants(graph)
    roles = GraphRoles([], [], [])
    for node in graph.node:
        if node.op_type not in QUANTIZABLE_OPS:
            continue
        if node.name in fbank_nodes:
            roles.fbank.append(node.name)
        elif any(i in constants for i in node.input[:2]):
            roles.weight.append(node.name)
        else:
            roles.activation_matmul.append(node.name)
    return roles


def ensure_node_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every node a unique name (the quantizer addresses nodes by name)."""
    used: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in used:
            node.name = f"{node.op_type}_{i}"
        used.add(node.name)
    return model


def _scope(node: onnx.NodeProto) -> str:
    """The encoder module a node came from: "model.blocks.3", "model.subsampler", ... (else its name).

    The dynamo exporter records module scopes in node metadata; the legacy exporter names nodes by path
    ("/model/blocks.3/attn/qkv/MatMul")."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = [s.strip(" '\"") for s in prop.value.strip("[]").split(",")]
            if len(scopes) > 2:
                return scopes[2]
    parts = node.name.split("/")
    return f"{parts[1]}.{parts[2]}" if len(parts) > 3 and parts[0] == "" else node.name


def layer_groups(model: onnx.ModelProto, nodes: list[str]) -> dict[str, list[str]]:
    """``nodes`` grouped by encoder module (fbank, subsampler, positional encoder, each block), in graph
    order: the unit the guard's sensitivity search measures and excludes."""
    wanted = set(nodes)
    groups: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.name in wanted:
            groups.setdefault(_scope(node), []).append(node.name)
    return groups
