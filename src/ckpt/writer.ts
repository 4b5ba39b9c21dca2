/**
 * Writes PyTorch ZIP checkpoints the way `torch.save` lays them out (protocol-2 `data.pkl`, one STORED entry per
 * storage, data aligned to 64 bytes): for test checkpoints with sgm key names, and for tests of the reader's
 * refusals (`pyCall` puts any global into the pickle). Not a general pickler: the values of `PyValue` only.
 */
import { writeAll, writeFileAtomically } from '../io/atomicFile.js';
import { SAFETENSORS_DTYPE_SIZE, type SafetensorsDtype } from '../safetensors/dtype.js';
import { STORAGE_DTYPES } from './pickle.js';

export interface PyTensor {
  kind: 'py-tensor';
  dtype: SafetensorsDtype;
  shape: number[];
  /** Little-endian element bytes, row-major. */
  data: Uint8Array;
}
export interface PyTuple {
  kind: 'py-tuple';
  items: PyValue[];
}
export interface PyOrderedDict {
  kind: 'py-ordered-dict';
  entries: Array<[string, PyValue]>;
}
/** `module.name(*args)`: how a pickle asks for arbitrary code (our reader refuses it). */
export interface PyCall {
  kind: 'py-call';
  module: string;
  name: string;
  args: PyValue[];
}
export type PyValue =
  | null
  | boolean
  | number
  | string
  | PyValue[]
  | PyTensor
  | PyTuple
  | PyOrderedDict
  | PyCall
  | Map<string, PyValue>;

export const pyTensor = (dtype: SafetensorsDtype, shape: number[], data: Uint8Array): PyTensor => ({
  kind: 'py-tensor',
  dtype,
  shape,
  data,
});
export const pyTuple = (...items: PyValue[]): PyTuple => ({ kind: 'py-tuple', items });
export const pyOrderedDict = (entries: Array<[string, PyValue]>): PyOrderedDict => ({
  kind: 'py-ordered-dict',
  entries,
});
export const pyCall = (module: string, name: string, args: PyValue[]): PyCall => ({
  kind: 'py-call',
  module,
  name,
  args,
});

const STORAGE_CLASS = Object.fromEntries(Object.entries(STORAGE_DTYPES).map(([cls, dt]) => [dt, cls])) as Record<
  SafetensorsDtype,
  string
>;

class PickleWriter {
  private parts: number[] = [];
  readonly storages: PyTensor[] = [];

  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }

  private op(...b: number[]) {
    this.parts.push(...b);
  }

  private u32(v: number) {
    this.op(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }

  private str(s: string) {
    const b = new TextEncoder().encode(s);
    this.op(0x58); // BINUNICODE
    this.u32(b.length);
    for (const x of b) this.parts.push(x);
  }

  private global(module: string, name: string) {
    this.op(0x63); // GLOBAL
    for (const x of new TextEncoder().encode(`${module}\n${name}\n`)) this.parts.push(x);
  }

  private int(v: number) {
    if (v >= 0 && v < 256) this.op(0x4b, v);
    else if (v >= -(2 ** 31) && v < 2 ** 31) {
      this.op(0x4a);
      this.u32(v >>> 0);
    } else {
      // LONG1, 8 bytes two's complement
      let big = BigInt.asUintN(64, BigInt(v));
      this.op(0x8a, 8);
      for (let i = 0; i < 8; i++, big >>= 8n) this.op(Number(big & 0xffn));
    }
  }

  value(v: PyValue): void {
    if (v === null) return this.op(0x4e);
    if (v === true) return this.op(0x88);
    if (v === false) return this.op(0x89);
    if (typeof v === 'number') {
      if (Number.isInteger(v)) return this.int(v);
      const b = new DataView(new ArrayBuffer(8));
      b.setFloat64(0, v, false);
      this.op(0x47, ...new Uint8Array(b.buffer));
      return;
    }
    if (typeof v === 'string') return this.str(v);
    if (v instanceof Map) {
      this.op(0x7d); // EMPTY_DICT
      return this.items([...v]);
    }
    if (Array.isArray(v)) {
      this.op(0x5d, 0x28); // EMPTY_LIST MARK
      v.forEach((x) => this.value(x));
      return this.op(0x65); // APPENDS
    }
    switch (v.kind) {
      case 'py-tuple':
        this.op(0x28);
        v.items.forEach((x) => this.value(x));
        return this.op(0x74); // TUPLE
      case 'py-ordered-dict':
        this.global('collections', 'OrderedDict');
        this.op(0x29, 0x52); // EMPTY_TUPLE REDUCE
        return this.items(v.entries);
      case 'py-call':
        this.global(v.module, v.name);
        this.value(pyTuple(...v.args));
        return this.op(0x52);
      case 'py-tensor':
        return this.tensor(v);
    }
  }

  private items(entries: Array<[string, PyValue]>) {
    if (entries.length === 0) return;
    this.op(0x28);
    for (const [k, x] of entries) {
      this.str(k);
      this.value(x);
    }
    this.op(0x75); // SETITEMS
  }

  private tensor(t: PyTensor) {
    const key = String(this.storages.length);
    this.storages.push(t);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const stride = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.op(0x28); // MARK (arguments)
    this.op(0x28); // MARK (persistent id)
    this.str('storage');
    this.global('torch', STORAGE_CLASS[t.dtype]);
    this.str(key);
    this.str('cpu');
    this.int(numel);
    this.op(0x74, 0x51); // TUPLE BINPERSID
    this.int(0);
    this.value(pyTuple(...t.shape));
    this.value(pyTuple(...stride));
    this.op(0x89); // requires_grad False
    this.value(pyOrderedDict([]));
    this.op(0x74, 0x52); // TUPLE REDUCE
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface WriteTorchCheckpointOptions {
  /** The archive's top folder (torch uses the file stem, or `archive`). */
  archiveName?: string;
  /** Write ZIP64 records even for a small file (to exercise the reader's ZIP64 path). */
  zip64?: boolean;
}

/**
 * Writes `root` as `torch.save(root, path)` would (tensors become storages under `data/`).
 *
 * @example
 *   const sd = pyOrderedDict([['w', pyTensor('F32', [2], bytes)]]);
 *   writeTorchCheckpoint('t.ckpt', new Map([['state_dict', sd]]));
 */
export function writeTorchCheckpoint(path: string, root: PyValue, options: WriteTorchCheckpointOptions = {}): void {
  const pw = new PickleWriter();
  pw.value(root);
  const pickle = new Uint8Array([0x80, 0x02, ...pw.bytes(), 0x2e]); // PROTO 2 … STOP
  const name = options.archiveName ?? 'archive';
  const files: Array<[string, Uint8Array]> = [
    [`${name}/data.pkl`, pickle],
    [`${name}/byteorder`, new TextEncoder().encode('little')],
    ...pw.storages.map((t, i): [string, Uint8Array] => {
      const expected = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_SIZE[t.dtype];
      if (t.data.byteLength !== expected)
        throw new Error(`tensor ${i}: ${t.data.byteLength} bytes for shape [${t.shape}] ${t.dtype}`);
      return [`${name}/data/${i}`, t.data];
    }),
    [`${name}/version`, new TextEncoder().encode('3\n')],
  ];
  writeFileAtomically(path, (fd) => writeZip(fd, files, options.zip64 ?? false));
}

function writeZip(fd: number, files: Array<[string, Uint8Array]>, forceZip64: boolean): void {
  let offset = 0;
  const central: Buffer[] = [];
  const put = (b: Uint8Array) => {
    writeAll(fd, b);
    offset += b.byteLength;
  };
  for (const [name, data] of files) {
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const zip64 = forceZip64 || data.byteLength >= 0xffffffff || offset >= 0xffffffff;
    const headerStart = offset;
    // local header + name + a padding extra field so the data starts on a 64-byte boundary (as torch does)
    const base = headerStart + 30 + nameBytes.length + 4 + (zip64 ? 20 : 0);
    const pad = (64 - (base % 64)) % 64;
    const extra = Buffer.alloc((zip64 ? 20 : 0) + 4 + pad);
    let e = 0;
    if (zip64) {
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(16, 2);
      extra.writeBigUInt64LE(BigInt(data.byteLength), 4);
      extra.writeBigUInt64LE(BigInt(data.byteLength), 12);
      e = 20;
    }
    extra.writeUInt16LE(0x4b46, e);
    extra.writeUInt16LE(pad, e + 2);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(zip64 ? 45 : 20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(zip64 ? 0xffffffff : data.byteLength, 18);
    local.writeUInt32LE(zip64 ? 0xffffffff : data.byteLength, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(extra.length, 28);
    put(local);
    put(nameBytes);
    put(extra);
    put(data);

    const cExtra = zip64 ? Buffer.alloc(28) : Buffer.alloc(0);
    if (zip64) {
      cExtra.writeUInt16LE(1, 0);
      cExtra.writeUInt16LE(24, 2);
      cExtra.writeBigUInt64LE(BigInt(data.byteLength), 4);
      cExtra.writeBigUInt64LE(BigInt(data.byteLength), 12);
      cExtra.writeBigUInt64LE(BigInt(headerStart), 20);
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(zip64 ? 45 : 20, 4);
    c.writeUInt16LE(zip64 ? 45 : 20, 6);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(zip64 ? 0xffffffff : data.byteLength, 20);
    c.writeUInt32LE(zip64 ? 0xffffffff : data.byteLength, 24);
    c.writeUInt16LE(nameBytes.length, 28);
    c.writeUInt16LE(cExtra.length, 30);
    c.writeUInt32LE(zip64 ? 0xffffffff : headerStart, 42);
    central.push(c, nameBytes, cExtra);
  }
  const cdStart = offset;
  for (const b of central) put(b);
  const cdSize = offset - cdStart;
  const zip64 = forceZip64 || cdStart >= 0xffffffff;
  if (zip64) {
    const recordAt = offset;
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(files.length), 24);
    rec.writeBigUInt64LE(BigInt(files.length), 32);
    rec.writeBigUInt64LE(BigInt(cdSize), 40);
    rec.writeBigUInt64LE(BigInt(cdStart), 48);
    put(rec);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(recordAt), 8);
    loc.writeUInt32LE(1, 16);
    put(loc);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(zip64 ? 0xffff : files.length, 8);
  end.writeUInt16LE(zip64 ? 0xffff : files.length, 10);
  end.writeUInt32LE(zip64 ? 0xffffffff : cdSize, 12);
  end.writeUInt32LE(zip64 ? 0xffffffff : cdStart, 16);
  put(end);
}
