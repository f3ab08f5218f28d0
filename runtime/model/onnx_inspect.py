"""Just enough of the ONNX protobuf format to refuse graphs that use external data.

vae-gen models keep every weight inside the .onnx file (they are a few MB at
most). A tensor that points to an external file could make onnxruntime read
any file the process can (older onnxruntime releases do not check that the
path stays in the model folder), so the runtime refuses such graphs before
creating a session. This walks the protobuf wire format directly, because
the runtime does not depend on the `onnx` package.
"""

from __future__ import annotations

from ..errors import ModelIntegrityError

# Which fields of which messages hold sub-messages that may contain tensors.
# Field numbers are those of onnx.proto (ModelProto, GraphProto, NodeProto, ...).
_MODEL, _GRAPH, _NODE, _ATTRIBUTE, _TENSOR, _SPARSE, _FUNCTION = range(7)
_CHILDREN = {
    _MODEL: {7: _GRAPH, 25: _FUNCTION},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTRIBUTE},
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
    _FUNCTION: {7: _NODE},
    _TENSOR: {},
}
_TENSOR_EXTERNAL_DATA = 13  # repeated StringStringEntryProto
_TENSOR_DATA_LOCATION = 14  # enum; 1 = EXTERNAL
#: Deeper nesting than this is no model we wrote: refuse rather than recurse without end.
_MAX_DEPTH = 64


class _Malformed(Exception):
    pass


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _uses_external_data(data: bytes, start: int, end: int, kind: int, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        raise _Malformed
    pos = start
    while pos < end:
        key, pos = _varint(data, pos, end)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos, end)
            if kind == _TENSOR and field == _TENSOR_DATA_LOCATION and value == 1:
                return True
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise _Malformed
            if kind == _TENSOR and field == _TENSOR_EXTERNAL_DATA:
                return True
            child = _CHILDREN[kind].get(field)
            if child is not None and _uses_external_data(data, pos, pos + length, child, depth + 1):
                return True
            pos += length
        else:  # groups (3, 4) are not used by ONNX; anything else is not protobuf
            raise _Malformed
    if pos != end:
        raise _Malformed
    return False


def refuse_external_data(data: bytes, name: str) -> None:
    """Raise ModelIntegrityError if the ONNX model in `data` is malformed or declares external data."""
    try:
        external = _uses_external_data(data, 0, len(data), _MODEL, 0)
    except _Malformed:
        raise ModelIntegrityError(f"{name}: not a well-formed ONNX protobuf") from None
    if external:
        raise ModelIntegrityError(f"{name}: refers to external data files; vae-gen models keep all weights inside the .onnx file")
