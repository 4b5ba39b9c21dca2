/**
 * Reads the graph of an .onnx file back into the plain `GraphDef` of model.ts: nodes, inputs, outputs and
 * initializers (dims and dtype; bytes only when stored inline, which is where shape constants live, else where
 * the external bytes are). Enough for static checks such as the tensor-size guard (tensorSizes.ts); external
 * weights are never loaded.
 * Field numbers follow onnx.proto.
 */
import { readFileSync } from 'node:fs';
import { ModelFormatError } from '../errors.js';
import {
  ONNX_DTYPE,
  type AttrValue,
  type DType,
  type Dim,
  type GraphDef,
  type NodeDef,
  type TensorDef,
  type ValueInfoDef,
} from './model.js';

const DTYPE_BY_CODE = new Map<number, DType>(Object.entries(ONNX_DTYPE).map(([k, v]) => [v, k as DType]));
const textDecoder = new TextDecoder();

type Field = { no: number; wire: number; value: bigint | Uint8Array };

/** The fields of one protobuf message (varints as bigint, length-delimited as bytes; fixed32/64 as bytes). */
function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[pos++];
      if (b === undefined) throw new Error('truncated varint');
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, value: varint() });
    else if (wire === 2) {
      const len = Number(varint());
      out.push({ no, wire, value: buf.subarray(pos, pos + len) });
      pos += len;
    } else if (wire === 5) {
      out.push({ no, wire, value: buf.subarray(pos, pos + 4) });
      pos += 4;
    } else if (wire === 1) {
      out.push({ no, wire, value: buf.subarray(pos, pos + 8) });
      pos += 8;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const str = (v: Field['value']) => textDecoder.decode(v as Uint8Array);
const signed = (v: bigint) => Number(BigInt.asIntN(64, v));

/** Repeated int64: packed (length-delimited) or one varint per field. */
function ints(fs: Field[], no: number): number[] {
  const out: number[] = [];
  for (const f of fs) {
    if (f.no !== no) continue;
    if (f.wire === 0) out.push(signed(f.value as bigint));
    else out.push(...packedVarints(f.value as Uint8Array).map(signed));
  }
  return out;
}

function packedVarints(bytes: Uint8Array): bigint[] {
  const out: bigint[] = [];
  let v = 0n;
  let shift = 0n;
  for (const b of bytes) {
    v |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if (b < 0x80) {
      out.push(v);
      v = 0n;
      shift = 0n;
    }
  }
  return out;
}

function floats(fs: Field[], no: number): number[] {
  const out: number[] = [];
  for (const f of fs) {
    if (f.no !== no) continue;
    const b = f.value as Uint8Array;
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i + 4 <= b.byteLength; i += 4) out.push(view.getFloat32(i, true));
  }
  return out;
}

function tensor(buf: Uint8Array): TensorDef {
  const fs = fields(buf);
  const code = Number(fs.find((f) => f.no === 2)?.value ?? 1n);
  const t: TensorDef = {
    name: str(fs.find((f) => f.no === 8)?.value ?? new Uint8Array()),
    dtype: DTYPE_BY_CODE.get(code) ?? 'float32',
    dims: ints(fs, 1),
  };
  const raw = fs.find((f) => f.no === 9)?.value as Uint8Array | undefined;
  if (raw) t.raw = raw;
  else if (t.dtype === 'int64' && fs.some((f) => f.no === 7)) {
    const vals = ints(fs, 7);
    const bytes = new Uint8Array(vals.length * 8);
    const view = new DataView(bytes.buffer);
    vals.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
    t.raw = bytes;
  } else if (t.dtype === 'float32' && fs.some((f) => f.no === 4)) {
    t.raw = new Uint8Array(Float32Array.from(floats(fs, 4)).buffer);
  }
  if (fs.some((f) => f.no === 14 && f.value === 1n)) {
    // external_data: string key/value entries (location, offset, length)
    const entry = new Map<string, string>();
    for (const f of fs.filter((f) => f.no === 13)) {
      const kv = fields(f.value as Uint8Array);
      entry.set(
        str(kv.find((x) => x.no === 1)?.value ?? new Uint8Array()),
        str(kv.find((x) => x.no === 2)?.value ?? new Uint8Array()),
      );
    }
    t.external = {
      location: entry.get('location') ?? '',
      offset: Number(entry.get('offset') ?? 0),
      length: Number(entry.get('length') ?? 0),
    };
  }
  return t;
}

function attribute(buf: Uint8Array): [string, AttrValue] {
  const fs = fields(buf);
  const name = str(fs.find((f) => f.no === 1)!.value);
  const type = Number(fs.find((f) => f.no === 20)?.value ?? 0n);
  const get = (no: number) => fs.find((f) => f.no === no)?.value;
  switch (type) {
    case 1:
      return [name, { kind: 'float', value: floats(fs, 2)[0] }];
    case 2:
      return [name, { kind: 'int', value: signed(get(3) as bigint) }];
    case 3:
      return [name, { kind: 'string', value: str(get(4)!) }];
    case 4:
      return [name, { kind: 'tensor', value: tensor(get(5) as Uint8Array) }];
    case 6:
      return [name, { kind: 'floats', value: floats(fs, 7) }];
    case 5:
      return [name, { kind: 'graph', value: graphProto(get(6) as Uint8Array) }];
    case 7:
      return [name, { kind: 'ints', value: ints(fs, 8) }];
    default:
      return [name, { kind: 'string', value: '' }];
  }
}

function valueInfo(buf: Uint8Array): ValueInfoDef {
  const fs = fields(buf);
  const name = str(fs.find((f) => f.no === 1)!.value);
  const tensorType = fields(
    (fields((fs.find((f) => f.no === 2)?.value as Uint8Array) ?? new Uint8Array()).find((f) => f.no === 1)
      ?.value as Uint8Array) ?? new Uint8Array(),
  );
  const dtype = DTYPE_BY_CODE.get(Number(tensorType.find((f) => f.no === 1)?.value ?? 1n)) ?? 'float32';
  const shapeBytes = tensorType.find((f) => f.no === 2)?.value as Uint8Array | undefined;
  const shape: Dim[] = shapeBytes
    ? fields(shapeBytes)
        .filter((f) => f.no === 1)
        .map((d) => {
          const df = fields(d.value as Uint8Array);
          const v = df.find((f) => f.no === 1);
          if (v) return signed(v.value as bigint);
          const p = df.find((f) => f.no === 2);
          return p ? str(p.value) : null;
        })
    : [];
  return { name, dtype, shape };
}

function node(buf: Uint8Array): NodeDef {
  const fs = fields(buf);
  const strings = (no: number) => fs.filter((f) => f.no === no).map((f) => str(f.value));
  const attributes: Record<string, AttrValue> = {};
  for (const f of fs.filter((f) => f.no === 5)) {
    const [k, v] = attribute(f.value as Uint8Array);
    attributes[k] = v;
  }
  const domain = fs.find((f) => f.no === 7);
  return {
    opType: strings(4)[0] ?? '',
    inputs: strings(1),
    outputs: strings(2),
    name: strings(3)[0],
    domain: domain ? str(domain.value) : '',
    attributes,
  };
}

/** The graph of a serialized ModelProto. */
export function decodeGraph(bytes: Uint8Array): GraphDef {
  const graphBytes = fields(bytes).find((f) => f.no === 7)?.value as Uint8Array | undefined;
  if (!graphBytes) throw new Error('no graph in the model');
  return graphProto(graphBytes);
}

function graphProto(graphBytes: Uint8Array): GraphDef {
  const fs = fields(graphBytes);
  const of = <T>(no: number, fn: (b: Uint8Array) => T) =>
    fs.filter((f) => f.no === no).map((f) => fn(f.value as Uint8Array));
  return {
    name: str(fs.find((f) => f.no === 2)?.value ?? new Uint8Array()),
    nodes: of(1, node),
    initializers: of(5, tensor),
    inputs: of(11, valueInfo),
    outputs: of(12, valueInfo),
  };
}

/** Reads `path`'s graph; a file that is not ONNX → ModelFormatError naming it. */
export function readGraph(path: string): GraphDef {
  try {
    return decodeGraph(readFileSync(path));
  } catch (err) {
    throw new ModelFormatError(path, `cannot be read as an ONNX model (${(err as Error).message})`);
  }
}
