"""FLOP count of an ONNX graph: MatMul, Gemm and Conv (2 FLOPs per multiply-accumulate) at fixed input shapes.

Shapes come from onnxruntime's symbolic shape inference after pinning every symbolic input axis ("batch") to 1, so
the count is per call at batch 1 and the pack's resolution. Other ops (norms, softmax, elementwise) are ignored:
they are a few percent of the total for these networks.
"""

from __future__ import annotations

import math

import onnx


def _skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """Copy of the graph with every large (or external) initializer turned into a graph input of the same shape:
    shape inference needs their shapes, not their values, and the copy stays small for multi-GB models."""
    m = onnx.ModelProto()
    m.ir_version = model.ir_version
    m.opset_import.extend(model.opset_import)
    m.graph.name = model.graph.name
    m.graph.node.extend(model.graph.node)
    m.graph.input.extend(model.graph.input)
    m.graph.output.extend(model.graph.output)
    for init in model.graph.initializer:
        external = init.data_location == onnx.TensorProto.EXTERNAL
        if external or math.prod(init.dims) > 64:
            m.graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
        else:
            m.graph.initializer.append(init)
    return m


def _fix_batch(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    m = _skeleton(model)
    for value in list(m.graph.input) + list(m.graph.output):
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param"):
                dim.Clear()
                dim.dim_value = batch
    return m


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    try:
        out = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
        if out is not None:
            return out
    except Exception:  # noqa: BLE001 - fall back to ONNX's own inference
        pass
    return onnx.shape_inference.infer_shapes(model, data_prop=True)


def _shape_table(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    table: dict[str, list[int | None]] = {}
    values = list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)
    for v in values:
        dims = v.type.tensor_type.shape.dim
        table[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    for init in model.graph.initializer:
        table[init.name] = list(init.dims)
    return table


def count_flops(model: onnx.ModelProto, batch: int = 1) -> int:
    """Works on a model loaded with or without its external data (`onnx.load(f, load_external_data=False)`)."""
    inferred = _infer(_fix_batch(model, batch))
    shapes = _shape_table(inferred)
    total = 0
    for node in inferred.graph.node:
        if node.op_type not in ("MatMul", "Gemm", "Conv"):
            continue
        out = shapes.get(node.output[0])
        a = shapes.get(node.input[0])
        b = shapes.get(node.input[1])
        if not out or not a or not b or None in out or None in a or None in b:
            raise ValueError(f"shape of {node.op_type} node {node.name!r} could not be inferred")
        if node.op_type == "MatMul":
            k = a[-1]
            total += 2 * math.prod(out) * k
        elif node.op_type == "Gemm":
            trans_a = next((at.i for at in node.attribute if at.name == "transA"), 0)
            k = a[0] if trans_a else a[1]
            total += 2 * math.prod(out) * k
        else:  # Conv: weight [Cout, Cin/groups, kh, kw]
            total += 2 * math.prod(out) * math.prod(b[1:])
    return int(total)
