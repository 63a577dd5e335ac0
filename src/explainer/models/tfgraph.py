"""A reader for frozen TensorFlow graphs (``GraphDef`` protobuf files), without TensorFlow.

A frozen graph stores every weight as a ``Const`` node. We decode the protobuf wire format
directly (it is small: varints, fixed-width numbers and length-delimited fields) and keep
only what a port needs: each node's op, inputs and constant tensor. No code runs from the
file, nothing is unpickled.

Field numbers are those of TensorFlow's ``graph.proto``, ``node_def.proto``,
``attr_value.proto``, ``tensor.proto`` and ``tensor_shape.proto``.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# TensorFlow's DataType enum values for the dtypes a frozen face model holds.
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 10: np.bool_}


class GraphFormatError(ValueError):
    """The bytes are not a GraphDef this reader understands."""


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    value: np.ndarray | None = None  # a Const node's tensor


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise GraphFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise GraphFormatError("varint too long")


def fields(buf: memoryview):
    """(field number, value) of one message: ints for varints and fixed widths, memoryviews
    for length-delimited fields (strings, bytes, sub-messages, packed arrays)."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise GraphFormatError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise GraphFormatError("field runs past the end of its message")
        yield number, value


def _tensor(buf: memoryview) -> np.ndarray:
    """A TensorProto as a numpy array (dtype 1, shape 2, tensor_content 4, float_val 5, int_val 7)."""
    dtype, shape, content, floats, ints = 1, [], None, [], []
    for number, value in fields(buf):
        if number == 1:
            dtype = value
        elif number == 2:
            shape = [next((v for n, v in fields(dim) if n == 1), 0) for n, dim in fields(value) if n == 2]
        elif number == 4:
            content = bytes(value)
        elif number == 5:
            floats.append(np.frombuffer(bytes(value), "<f4"))  # packed or one 32-bit field: both bytes
        elif number == 7:
            ints.extend(_packed_varints(value) if isinstance(value, memoryview) else [value])
    if dtype not in DTYPES:
        raise GraphFormatError(f"unsupported tensor dtype {dtype}")
    np_dtype = np.dtype(DTYPES[dtype]).newbyteorder("<")
    count = int(np.prod(shape)) if shape else 1
    if content is not None:
        array = np.frombuffer(content, np_dtype)
    elif floats:
        array = np.concatenate(floats)
    else:
        array = np.asarray(ints, np_dtype)
    if array.size == 1 and count != 1:  # a splat: one value stands for the whole tensor
        array = np.full(count, array[0], np_dtype)
    if array.size != count:
        raise GraphFormatError(f"tensor of shape {shape} holds {array.size} values")
    return array.astype(DTYPES[dtype]).reshape(shape)


def _packed_varints(buf: memoryview) -> list[int]:
    out, pos = [], 0
    while pos < len(buf):
        value, pos = _varint(buf, pos)
        out.append(value - (1 << 64) if value >= 1 << 63 else value)
    return out


def _node(buf: memoryview) -> Node:
    """A NodeDef: name 1, op 2, input 3, attr 5 (map entries: key 1, AttrValue 2; tensor is 8)."""
    node = Node("", "")
    for number, value in fields(buf):
        if number == 1:
            node.name = bytes(value).decode()
        elif number == 2:
            node.op = bytes(value).decode()
        elif number == 3:
            node.inputs.append(bytes(value).decode())
        elif number == 5:
            entry = dict(fields(value))
            if bytes(entry.get(1, b"")) == b"value":
                for attr_number, attr in fields(entry.get(2, memoryview(b""))):
                    if attr_number == 8:
                        node.value = _tensor(attr)
    return node


def read_graph(path: str | Path) -> dict[str, Node]:
    """Every node of a frozen GraphDef file, by name (GraphDef's ``node`` is field 1)."""
    buf = memoryview(Path(path).read_bytes())
    nodes = {}
    try:
        for number, value in fields(buf):
            if number == 1:
                node = _node(value)
                nodes[node.name] = node
    except GraphFormatError:
        raise
    except ValueError as exc:  # bad UTF-8, a tensor's bytes not a whole number of values, ...
        raise GraphFormatError(f"{path}: not a readable GraphDef ({exc})") from None
    if not nodes:
        raise GraphFormatError(f"{path}: no graph nodes found")
    return nodes
