"""Reading an untrusted ONNX file: bounded before parsing, tensors checked before allocating.

An ONNX model is a protobuf message, and a hostile one can declare a tensor of 2^40 values,
nest sub-graphs without end, hold millions of nodes, or point its external data at
``../../etc/passwd``. :func:`read_model` therefore

1. refuses files over :data:`MAX_FILE_BYTES` (protobuf's own 2 GiB limit);
2. walks the protobuf wire format of the model and its graph *before* parsing, counting
   nodes, initializers and attributes against :data:`MAX_NODES` and friends, and refusing
   sub-graph attributes (If / Loop / Scan bodies: the only way a model nests graphs), model
   local functions and training graphs, so the parser only ever sees a flat graph;
3. parses with ``onnx`` without loading external data;

and :func:`tensor_array` turns a TensorProto into a NumPy array only after checking its
declared shape (at most :data:`MAX_TENSOR_VALUES` values) against the bytes actually
present, in the file or in an external-data file that must lie inside the model's folder.
"""

from __future__ import annotations

from math import prod
from pathlib import Path

import numpy as np

from .errors import OnnxImportError, require_onnx

__all__ = ["read_model", "tensor_array", "MAX_FILE_BYTES", "MAX_NODES", "MAX_TENSOR_VALUES"]

MAX_FILE_BYTES = 2 << 30         # protobuf cannot parse a larger message anyway
MAX_NODES = 20_000               # an EfficientNet-B7 export has ~1,500 nodes; DenseNet-201 ~1,300
MAX_INITIALIZERS = 20_000
MAX_ATTRIBUTES = 64              # per node; a Conv has 6
MAX_TENSOR_VALUES = 1 << 30      # one tensor: 4 GiB of float32, more than any file holds
_WIRE_VARINT, _WIRE_64, _WIRE_LEN, _WIRE_32 = 0, 1, 2, 5
# Field numbers (onnx.proto): ModelProto.graph 7, .training_info 20, .functions 25;
# GraphProto.node 1, .initializer 5, .sparse_initializer 15; NodeProto.attribute 5;
# AttributeProto.g 6, .graphs 11.
_MODEL_GRAPH, _MODEL_TRAINING, _MODEL_FUNCTIONS = 7, 20, 25
_GRAPH_NODE, _GRAPH_INIT, _GRAPH_SPARSE = 1, 5, 15
_NODE_ATTRIBUTE = 5
_ATTR_GRAPH, _ATTR_GRAPHS = 6, 11


def _fields(buf: memoryview, start: int, end: int, where: str):
    """Yield (field number, wire type, payload start, payload end) of one message's fields."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end, where)
        field, wire = key >> 3, key & 7
        if wire == _WIRE_VARINT:
            _, nxt = _varint(buf, pos, end, where)
        elif wire == _WIRE_64:
            nxt = pos + 8
        elif wire == _WIRE_32:
            nxt = pos + 4
        elif wire == _WIRE_LEN:
            length, pos = _varint(buf, pos, end, where)
            nxt = pos + length
        else:
            raise OnnxImportError(f"{where}: not a protobuf message (wire type {wire})")
        if nxt > end:
            raise OnnxImportError(f"{where}: a field runs past the end of its message (truncated file?)")
        yield field, wire, pos, nxt
        pos = nxt


def _varint(buf: memoryview, pos: int, end: int, where: str) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= end or shift > 63:
            raise OnnxImportError(f"{where}: a truncated or malformed protobuf varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _prescan(data: bytes, path: Path) -> None:
    """Count and bound the model's graph before the protobuf parser sees it."""
    where = f"'{path}'"
    buf = memoryview(data)
    graphs = 0
    for field, wire, start, end in _fields(buf, 0, len(buf), where):
        if field in (_MODEL_TRAINING, _MODEL_FUNCTIONS) and wire == _WIRE_LEN:
            what = "training graphs" if field == _MODEL_TRAINING else "model-local functions"
            raise OnnxImportError(f"{where} holds {what}, which convscope does not import")
        if field == _MODEL_GRAPH and wire == _WIRE_LEN:
            graphs += 1
            _prescan_graph(buf, start, end, where)
    if graphs != 1:
        raise OnnxImportError(f"{where} is not an ONNX model (it holds {graphs} graphs, not one)")


def _prescan_graph(buf: memoryview, start: int, end: int, where: str) -> None:
    nodes = inits = 0
    for field, wire, s, e in _fields(buf, start, end, where):
        if wire != _WIRE_LEN:
            continue
        if field == _GRAPH_NODE:
            nodes += 1
            if nodes > MAX_NODES:
                raise OnnxImportError(f"{where} has more than {MAX_NODES} nodes; convscope imports "
                                      f"image classifiers, which have at most a few thousand")
            _prescan_node(buf, s, e, where, nodes - 1)
        elif field in (_GRAPH_INIT, _GRAPH_SPARSE):
            inits += 1
            if inits > MAX_INITIALIZERS:
                raise OnnxImportError(f"{where} has more than {MAX_INITIALIZERS} initializers")


def _prescan_node(buf: memoryview, start: int, end: int, where: str, index: int) -> None:
    attrs = 0
    for field, wire, s, e in _fields(buf, start, end, where):
        if field != _NODE_ATTRIBUTE or wire != _WIRE_LEN:
            continue
        attrs += 1
        if attrs > MAX_ATTRIBUTES:
            raise OnnxImportError(f"{where}: node {index} has more than {MAX_ATTRIBUTES} attributes")
        for afield, awire, _, _ in _fields(buf, s, e, where):
            if afield in (_ATTR_GRAPH, _ATTR_GRAPHS) and awire == _WIRE_LEN:
                raise OnnxImportError(f"{where}: node {index} has a sub-graph attribute (If / Loop / "
                                      f"Scan), which convscope does not import")


def read_model(path):
    """The ``onnx.ModelProto`` in ``path``, bounded and pre-scanned (see the module docstring);
    external data is not loaded (:func:`tensor_array` reads it, checked). OnnxImportError
    (one line naming the file) for anything that is not a model convscope can read."""
    onnx = require_onnx()
    path = Path(path)
    if not path.is_file():
        raise OnnxImportError(f"ONNX file '{path}' does not exist" if not path.exists()
                              else f"'{path}' is not a file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise OnnxImportError(f"'{path}' is {size} bytes, more than the {MAX_FILE_BYTES} an ONNX "
                              f"model can hold (larger weights belong in external data)")
    data = path.read_bytes()
    _prescan(data, path)
    try:
        model = onnx.ModelProto.FromString(data)
    except Exception as err:            # protobuf's DecodeError, or its recursion limit
        raise OnnxImportError(f"'{path}' is not a readable ONNX model: {' '.join(str(err).split())[:200]}") \
            from None
    return model


def _np_dtype(data_type: int, name: str):
    onnx = require_onnx()
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type))
    except Exception:
        raise OnnxImportError(f"tensor {name!r} has an unknown element type {data_type}") from None
    if dtype.kind not in "fiub":
        raise OnnxImportError(f"tensor {name!r} has element type {dtype}, not a number")
    return dtype


def _external_bytes(tensor, model_dir: Path, nbytes: int) -> bytes:
    """The external data of ``tensor``: a file inside ``model_dir``, its slice checked."""
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    rel = Path(location)
    if not location or rel.is_absolute() or ".." in rel.parts or rel.drive:
        raise OnnxImportError(f"tensor {tensor.name!r}: external data path {location!r} is not a "
                              f"relative path inside the model's folder; refused")
    base = model_dir.resolve()
    target = (base / rel).resolve()
    if not target.is_relative_to(base):
        raise OnnxImportError(f"tensor {tensor.name!r}: external data {location!r} leads outside the "
                              f"model's folder; refused")
    if not target.is_file():
        raise OnnxImportError(f"tensor {tensor.name!r}: external data file {location!r} does not exist")
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", nbytes))
    except ValueError:
        raise OnnxImportError(f"tensor {tensor.name!r}: external data offset/length are not integers") from None
    if offset < 0 or length != nbytes or offset + length > target.stat().st_size:
        raise OnnxImportError(f"tensor {tensor.name!r}: external data {location!r} offset {offset}, length "
                              f"{length} does not hold the {nbytes} bytes its shape declares")
    with open(target, "rb") as f:
        f.seek(offset)
        return f.read(length)


def tensor_array(tensor, model_dir: Path | None) -> np.ndarray:
    """A TensorProto as a NumPy array, its declared size checked against the data first.

    ``model_dir`` is the folder external data must lie in (None: external data refused)."""
    name = tensor.name or "(unnamed)"
    dims = tuple(int(d) for d in tensor.dims)
    if any(d < 0 for d in dims):
        raise OnnxImportError(f"tensor {name!r} declares a negative size in {list(dims)}")
    count = prod(dims)
    if count > MAX_TENSOR_VALUES:
        raise OnnxImportError(f"tensor {name!r} declares {count} values (shape {list(dims)}), more than "
                              f"the {MAX_TENSOR_VALUES} convscope accepts")
    dtype = _np_dtype(tensor.data_type, name)
    nbytes = count * dtype.itemsize
    if tensor.data_location == 1:                      # TensorProto.EXTERNAL
        if model_dir is None:
            raise OnnxImportError(f"tensor {name!r} keeps its data in an external file, not allowed here")
        raw = _external_bytes(tensor, model_dir, nbytes)
        return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(dims)
    if tensor.HasField("raw_data"):
        if len(tensor.raw_data) != nbytes:
            raise OnnxImportError(f"tensor {name!r} declares shape {list(dims)} ({nbytes} bytes) but holds "
                                  f"{len(tensor.raw_data)} bytes")
        return np.frombuffer(tensor.raw_data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(dims)
    for field, kind in (("float_data", np.float32), ("double_data", np.float64), ("int64_data", np.int64),
                        ("int32_data", np.int32), ("uint64_data", np.uint64)):
        values = getattr(tensor, field)
        if len(values):
            if len(values) != count:
                raise OnnxImportError(f"tensor {name!r} declares {count} values but holds {len(values)}")
            arr = np.array(values, dtype=kind)
            if field == "int32_data" and dtype.itemsize == 2 and dtype.kind == "f":    # float16 bits
                arr = arr.astype(np.uint16).view(np.float16)
            return arr.astype(dtype).reshape(dims)
    if count:
        raise OnnxImportError(f"tensor {name!r} declares {count} values but holds none")
    return np.zeros(dims, dtype=dtype)
