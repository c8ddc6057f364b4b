// A minimal ONNX model encoder: just enough of onnx.proto3 to write small compute graphs (a few nodes,
// typed inputs and outputs, small initializers) that onnxruntime-node loads from bytes. No dependency:
// the protobuf wire format (varints and length-delimited fields) is written by hand.
//
// Field numbers follow onnx/onnx.proto3 (ONNX 1.14+; the numbers have not changed since IR version 3):
//   ModelProto       ir_version = 1, producer_name = 2, graph = 7, opset_import = 8
//   OperatorSetIdProto domain = 1, version = 2
//   GraphProto       node = 1, name = 2, initializer = 5, input = 11, output = 12
//   NodeProto        input = 1, output = 2, name = 3, op_type = 4, attribute = 5, domain = 7
//   AttributeProto   name = 1, f = 2, i = 3, s = 4, floats = 7, ints = 8, type = 20
//   TensorProto      dims = 1, data_type = 2, name = 8, raw_data = 9
//   ValueInfoProto   name = 1, type = 2
//   TypeProto        tensor_type = 1;  TypeProto.Tensor elem_type = 1, shape = 2
//   TensorShapeProto dim = 1;  TensorShapeProto.Dimension dim_value = 1, dim_param = 2
// Protobuf wire format: https://protobuf.dev/programming-guides/encoding/ (tag = field << 3 | wire type;
// wire type 0 = varint, 2 = length-delimited, 5 = 32-bit).

/** TensorProto.DataType values used here (onnx.proto3, enum DataType). */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9 } as const
export type DataTypeCode = (typeof DataType)[keyof typeof DataType]

/** AttributeProto.AttributeType values (onnx.proto3, enum AttributeType). */
const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const

/** Intermediate representation version written (IR 8 = ONNX 1.10+, read by every onnxruntime since 1.10). */
export const IR_VERSION = 8
/** Default-domain operator set the graphs are written against (TopK with K as an input needs ≥ 10). */
export const OPSET = 17

/** An attribute value: a JS number is written as INT when integral and `float` is not set. */
export type Attribute = { int: number } | { float: number } | { ints: number[] } | { floats: number[] } | { string: string }

export interface Node {
  op: string
  inputs: string[]
  outputs: string[]
  name?: string
  attributes?: Record<string, Attribute>
}

/** A graph input or output: element type and shape; a string dimension is symbolic (dim_param). */
export interface ValueInfo {
  name: string
  type: DataTypeCode
  shape: (number | string)[]
}

/** A constant tensor stored in the model (raw_data, little-endian). */
export interface Initializer {
  name: string
  type: DataTypeCode
  dims: number[]
  data: Float32Array | Int32Array | BigInt64Array
}

export interface Graph {
  name: string
  nodes: Node[]
  inputs: ValueInfo[]
  outputs: ValueInfo[]
  initializers?: Initializer[]
}

/** Growable byte buffer with the protobuf primitives. */
class Writer {
  private buf = new Uint8Array(256)
  private len = 0

  private reserve(extra: number): void {
    if (this.len + extra <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.len + extra) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.len))
    this.buf = next
  }

  /** Unsigned varint; negative int64 values are written as their 10-byte two's complement. */
  varint(value: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(value))
    this.reserve(10)
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80
      v >>= 7n
    }
    this.buf[this.len++] = Number(v)
    return this
  }

  tag(field: number, wireType: 0 | 2 | 5): this {
    return this.varint((field << 3) | wireType)
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, 2).varint(data.length)
    this.reserve(data.length)
    this.buf.set(data, this.len)
    this.len += data.length
    return this
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s))
  }

  int(field: number, value: number | bigint): this {
    return this.tag(field, 0).varint(value)
  }

  float(field: number, value: number): this {
    this.tag(field, 5)
    this.reserve(4)
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, value, true)
    this.len += 4
    return this
  }

  message(field: number, write: (w: Writer) => void): this {
    const inner = new Writer()
    write(inner)
    return this.bytes(field, inner.finish())
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len)
  }
}

function writeAttribute(w: Writer, name: string, a: Attribute): void {
  w.string(1, name)
  if ('int' in a) w.int(3, a.int).int(20, AttributeType.INT)
  else if ('float' in a) w.float(2, a.float).int(20, AttributeType.FLOAT)
  else if ('string' in a) w.string(4, a.string).int(20, AttributeType.STRING)
  else if ('ints' in a) {
    for (const v of a.ints) w.int(8, v)
    w.int(20, AttributeType.INTS)
  } else {
    for (const v of a.floats) w.float(7, v)
    w.int(20, AttributeType.FLOATS)
  }
}

function writeValueInfo(w: Writer, v: ValueInfo): void {
  w.string(1, v.name)
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.type)
      tensor.message(2, (shape) => {
        for (const dim of v.shape) shape.message(1, (d) => (typeof dim === 'number' ? d.int(1, dim) : d.string(2, dim)))
      })
    })
  )
}

function writeInitializer(w: Writer, t: Initializer): void {
  const count = t.dims.reduce((a, b) => a * b, 1)
  if (count !== t.data.length) throw new Error(`ONNX initializer ${t.name}: dims [${t.dims.join(', ')}] hold ${count} values, data has ${t.data.length}.`)
  for (const d of t.dims) w.int(1, d)
  w.int(2, t.type)
  w.string(8, t.name)
  // raw_data is little-endian; typed arrays are in the platform's order, little-endian on every target we ship.
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))
}

/**
 * Serialises a graph as an ONNX ModelProto (IR_VERSION, default-domain opset OPSET) that
 * `InferenceSession.create(bytes)` loads. Node order must be topological; names are not checked here
 * (onnxruntime reports unknown inputs by name when it loads the model).
 */
export function encodeModel(graph: Graph, producer = 'featuretrace'): Uint8Array {
  const w = new Writer()
  w.int(1, IR_VERSION)
  w.string(2, producer)
  w.message(7, (g) => {
    for (const node of graph.nodes) {
      g.message(1, (n) => {
        for (const i of node.inputs) n.string(1, i)
        for (const o of node.outputs) n.string(2, o)
        if (node.name) n.string(3, node.name)
        n.string(4, node.op)
        for (const [name, a] of Object.entries(node.attributes ?? {})) n.message(5, (attr) => writeAttribute(attr, name, a))
      })
    }
    g.string(2, graph.name)
    for (const t of graph.initializers ?? []) g.message(5, (init) => writeInitializer(init, t))
    for (const v of graph.inputs) g.message(11, (vi) => writeValueInfo(vi, v))
    for (const v of graph.outputs) g.message(12, (vi) => writeValueInfo(vi, v))
  })
  w.message(8, (op) => op.string(1, '').int(2, OPSET))
  return w.finish()
}
