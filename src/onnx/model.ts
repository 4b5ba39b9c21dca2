/**
 * Plain-data description of an ONNX model and its protobuf encoding (ModelProto, IR 10).
 * Field numbers follow onnx.proto; only the fields this project writes are covered.
 */
import { ProtoWriter } from './protobuf.js';

/** Element types the builder uses, named like onnxruntime-node's tensor types. */
export type DType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8' | 'int8';

/** TensorProto.DataType codes. */
export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
};

/** Bytes per element. */
export const DTYPE_SIZE: Record<DType, number> = {
  float32: 4,
  uint8: 1,
  int8: 1,
  int32: 4,
  int64: 8,
  bool: 1,
  float16: 2,
  float64: 8,
  bfloat16: 2,
};

/** A dimension: a fixed size, a symbolic name (dynamic axis), or unknown (null). */
export type Dim = number | string | null;

export type AttrValue =
  | { kind: 'int'; value: number | bigint }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: ReadonlyArray<number | bigint> }
  | { kind: 'floats'; value: ReadonlyArray<number> }
  | { kind: 'tensor'; value: TensorDef }
  /** A subgraph (Loop/If/Scan bodies); it may read values of the enclosing graphs by name. */
  | { kind: 'graph'; value: GraphDef };

export interface NodeDef {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  /** '' (ai.onnx) or e.g. 'com.microsoft'. */
  domain?: string;
  attributes?: Record<string, AttrValue>;
}

/** Where an externally stored tensor's bytes are: a path relative to the .onnx file's directory. */
export interface ExternalRef {
  location: string;
  offset: number;
  length: number;
}

export interface TensorDef {
  name: string;
  dtype: DType;
  dims: number[];
  /** Little-endian bytes, stored inline. Exactly one of raw / external is set. */
  raw?: Uint8Array;
  external?: ExternalRef;
}

export interface ValueInfoDef {
  name: string;
  dtype: DType;
  /** Omitted: rank unknown (only for subgraph outputs). */
  shape?: Dim[];
}

export interface GraphDef {
  name: string;
  nodes: NodeDef[];
  initializers: TensorDef[];
  inputs: ValueInfoDef[];
  outputs: ValueInfoDef[];
}

export interface ModelDef {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producerName: string;
  producerVersion?: string;
  docString?: string;
  graph: GraphDef;
}

/** The IR version and default opset we target; ORT 1.30 loads IR 10–13 with opsets 21–26 (docs/runtime.md §1.3). */
export const IR_VERSION = 10;
export const OPSET = 21;

function writeTensor(w: ProtoWriter, t: TensorDef): void {
  if (t.dims.length) w.packedInts(1, t.dims);
  w.int(2, ONNX_DTYPE[t.dtype]);
  w.string(8, t.name);
  if (t.external) {
    const ext = t.external;
    // external_data entries are string key/value pairs, even for offset and length.
    const entries: [string, string][] = [
      ['location', ext.location],
      ['offset', String(ext.offset)],
      ['length', String(ext.length)],
    ];
    for (const [k, v] of entries) {
      w.message(13, (e) => {
        e.string(1, k);
        e.string(2, v);
      });
    }
    w.int(14, 1); // data_location = EXTERNAL
  } else {
    w.bytes(9, t.raw ?? new Uint8Array(0));
  }
}

function writeAttribute(w: ProtoWriter, name: string, a: AttrValue): void {
  w.string(1, name);
  switch (a.kind) {
    case 'float':
      w.float(2, a.value);
      w.int(20, 1);
      break;
    case 'int':
      w.int(3, a.value);
      w.int(20, 2);
      break;
    case 'string':
      w.string(4, a.value);
      w.int(20, 3);
      break;
    case 'tensor':
      w.message(5, (t) => writeTensor(t, a.value));
      w.int(20, 4);
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      w.int(20, 6);
      break;
    case 'ints':
      w.packedInts(8, a.value);
      w.int(20, 7);
      break;
    case 'graph':
      w.message(6, (g) => writeGraph(g, a.value));
      w.int(20, 5);
      break;
  }
}

function writeValueInfo(w: ProtoWriter, v: ValueInfoDef): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, ONNX_DTYPE[v.dtype]);
      if (!v.shape) return; // rank unknown (a subgraph output ORT infers)
      const dims = v.shape;
      tensor.message(2, (shape) => {
        for (const d of dims) {
          shape.message(1, (dim) => {
            if (typeof d === 'number') dim.int(1, d);
            else if (typeof d === 'string') dim.string(2, d);
          });
        }
      });
    }),
  );
}

function writeNode(w: ProtoWriter, n: NodeDef): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, a] of Object.entries(n.attributes ?? {})) w.message(5, (aw) => writeAttribute(aw, k, a));
  if (n.domain) w.string(7, n.domain);
}

function writeGraph(g: ProtoWriter, graph: GraphDef): void {
  for (const n of graph.nodes) g.message(1, (nw) => writeNode(nw, n));
  g.string(2, graph.name);
  for (const t of graph.initializers) g.message(5, (tw) => writeTensor(tw, t));
  for (const i of graph.inputs) g.message(11, (vw) => writeValueInfo(vw, i));
  for (const o of graph.outputs) g.message(12, (vw) => writeValueInfo(vw, o));
}

/** Serialises a model to ONNX protobuf bytes. */
export function encodeModel(m: ModelDef): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, m.irVersion);
  w.string(2, m.producerName);
  if (m.producerVersion) w.string(3, m.producerVersion);
  if (m.docString) w.string(6, m.docString);
  w.message(7, (g) => writeGraph(g, m.graph));
  for (const o of m.opsets) {
    w.message(8, (ow) => {
      if (o.domain) ow.string(1, o.domain);
      ow.int(2, o.version);
    });
  }
  return w.finish();
}
