/**
 * A restricted reader of Python pickles as `torch.save` writes them (protocol 2, docs/camera-motion.md). It
 * builds plain values — None, bools, numbers, strings, bytes, lists, tuples, dicts — and tensor references,
 * and nothing else: the only globals it knows are the handful torch uses to rebuild tensors and ordered dicts,
 * and it resolves them to its own functions. Any other global (a class, `os.system`, ...) stops the read with an
 * error naming it. Nothing in the file is ever executed.
 */
import type { SafetensorsDtype } from '../safetensors/dtype.js';

/** A storage named by a tensor: its bytes are the archive entry `data/<key>`. */
export interface TorchStorage {
  kind: 'storage';
  key: string;
  dtype: SafetensorsDtype;
  numel: number;
}

/** A tensor as `torch._utils._rebuild_tensor_v2` would rebuild it: a view into a storage. */
export interface TorchTensor {
  kind: 'tensor';
  storage: TorchStorage;
  /** In elements. */
  storageOffset: number;
  shape: number[];
  stride: number[];
}

export type PickleValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | PickleValue[]
  | Map<PickleValue, PickleValue>
  | TorchTensor
  | TorchStorage
  | PickleGlobal;

/** A reference to one of the few globals we know (e.g. a storage class inside a persistent id). */
export interface PickleGlobal {
  kind: 'global';
  name: string;
  call?: (args: PickleValue[]) => PickleValue;
  storageDtype?: SafetensorsDtype;
}

/** Thrown for a file that is not a pickle we can read; `global` is set when it names a refused global. */
export class PickleError extends Error {
  constructor(
    message: string,
    readonly global?: string,
  ) {
    super(message);
  }
}

/** torch's storage classes (pickled as `torch.<Name>Storage`) and their element types. */
export const STORAGE_DTYPES: Record<string, SafetensorsDtype> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

type GlobalRef = PickleGlobal;
type StackItem = PickleValue;

const isGlobal = (v: unknown): v is GlobalRef =>
  typeof v === 'object' && v !== null && (v as GlobalRef).kind === 'global';

function asInts(v: PickleValue, what: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x)))
    throw new PickleError(`${what} is not a tuple of integers`);
  return v as number[];
}

function rebuildTensor(args: PickleValue[]): PickleValue {
  const [storage, offset, size, stride] = args;
  if (!storage || typeof storage !== 'object' || (storage as TorchStorage).kind !== 'storage')
    throw new PickleError('_rebuild_tensor_v2 without a storage');
  if (typeof offset !== 'number') throw new PickleError('_rebuild_tensor_v2: storage offset is not a number');
  return {
    kind: 'tensor',
    storage: storage as TorchStorage,
    storageOffset: offset,
    shape: asInts(size, 'tensor size'),
    stride: asInts(stride, 'tensor stride'),
  };
}

/** The globals a tensor checkpoint needs, each mapped to our own implementation (never to Python's). */
function knownGlobal(module: string, name: string): GlobalRef | undefined {
  const full = `${module}.${name}`;
  if (module === 'torch' && name in STORAGE_DTYPES)
    return { kind: 'global', name: full, storageDtype: STORAGE_DTYPES[name] };
  switch (full) {
    case 'torch._utils._rebuild_tensor_v2':
      return { kind: 'global', name: full, call: rebuildTensor };
    case 'torch._utils._rebuild_parameter': // (data, requires_grad, backward_hooks): a Parameter is its tensor
      return { kind: 'global', name: full, call: (a) => a[0] };
    case 'collections.OrderedDict':
      return { kind: 'global', name: full, call: () => new Map() };
    case '_codecs.encode': // protocol 2 spells bytes as encode(latin-1 text, 'latin1')
      return {
        kind: 'global',
        name: full,
        call: (a) => {
          if (typeof a[0] !== 'string') throw new PickleError('_codecs.encode of a non-string');
          return Uint8Array.from(a[0], (c) => c.charCodeAt(0) & 0xff);
        },
      };
    default:
      return undefined;
  }
}

export interface UnpickleOptions {
  /** Resolves a persistent id (torch: `('storage', StorageClass, key, location, numel)`). */
  persistentLoad: (pid: PickleValue[]) => PickleValue;
}

/**
 * Reads one pickle. Throws PickleError for a refused global (with `global` set), an opcode outside the
 * plain-data subset, or a malformed stream.
 */
export function unpickle(data: Uint8Array, options: UnpickleOptions): PickleValue {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const stack: StackItem[] = [];
  const marks: number[] = [];
  const memo = new Map<number, StackItem>();
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let p = 0;

  const need = (n: number) => {
    if (p + n > data.length) throw new PickleError('pickle ends early (truncated file?)');
  };
  const u8 = () => {
    need(1);
    return data[p++];
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(p, true);
    p += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(p, true);
    p += 4;
    return v;
  };
  const i32 = () => {
    need(4);
    const v = view.getInt32(p, true);
    p += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = Number(view.getBigUint64(p, true));
    p += 8;
    return v;
  };
  const bytes = (n: number) => {
    need(n);
    const b = data.subarray(p, p + n);
    p += n;
    return b;
  };
  const text = (n: number) => decoder.decode(bytes(n));
  const line = () => {
    const end = data.indexOf(0x0a, p);
    if (end < 0) throw new PickleError('pickle ends early (truncated file?)');
    const s = new TextDecoder().decode(data.subarray(p, end));
    p = end + 1;
    return s;
  };
  const pop = (): StackItem => {
    if (stack.length === 0) throw new PickleError('malformed pickle: stack underflow');
    return stack.pop()!;
  };
  const popValue = pop;
  const popMark = (): StackItem[] => {
    const at = marks.pop();
    if (at === undefined) throw new PickleError('malformed pickle: no mark');
    return stack.splice(at);
  };
  const values = (items: StackItem[]): PickleValue[] => items;
  const top = (): StackItem => {
    if (stack.length === 0) throw new PickleError('malformed pickle: stack underflow');
    return stack[stack.length - 1];
  };
  const global = (module: string, name: string) => {
    const g = knownGlobal(module, name);
    if (!g) {
      throw new PickleError(
        `it references the Python global ${module}.${name}; only tensors and plain containers are read from ` +
          '.ckpt files (nothing in them is run)',
        `${module}.${name}`,
      );
    }
    stack.push(g);
  };
  const setItems = (target: StackItem, items: PickleValue[]) => {
    if (!(target instanceof Map)) throw new PickleError('malformed pickle: SETITEM on a non-dict');
    for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const appendItems = (target: StackItem, items: PickleValue[]) => {
    if (!Array.isArray(target)) throw new PickleError('malformed pickle: APPEND on a non-list');
    target.push(...items);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80:
        u8();
        break; // PROTO
      case 0x95:
        u64();
        break; // FRAME
      case 0x2e: {
        // STOP
        const v = popValue();
        return v;
      }
      case 0x28:
        marks.push(stack.length);
        break; // MARK
      case 0x29:
        stack.push([]);
        break; // EMPTY_TUPLE
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x7d:
        stack.push(new Map());
        break; // EMPTY_DICT
      case 0x8f:
        stack.push([]);
        break; // EMPTY_SET (as a list)
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x4a:
        stack.push(i32());
        break; // BININT
      case 0x4b:
        stack.push(u8());
        break; // BININT1
      case 0x4d:
        stack.push(u16());
        break; // BININT2
      case 0x8a: {
        // LONG1: little-endian two's complement
        const n = u8();
        const b = bytes(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))
          throw new PickleError('integer too large');
        stack.push(Number(v));
        break;
      }
      case 0x47: {
        need(8);
        stack.push(view.getFloat64(p, false));
        p += 8;
        break;
      } // BINFLOAT (big-endian)
      case 0x58:
        stack.push(text(u32()));
        break; // BINUNICODE
      case 0x8c:
        stack.push(text(u8()));
        break; // SHORT_BINUNICODE
      case 0x8d:
        stack.push(text(u64()));
        break; // BINUNICODE8
      case 0x42:
        stack.push(Uint8Array.from(bytes(u32())));
        break; // BINBYTES
      case 0x43:
        stack.push(Uint8Array.from(bytes(u8())));
        break; // SHORT_BINBYTES
      case 0x8e:
        stack.push(Uint8Array.from(bytes(u64())));
        break; // BINBYTES8
      case 0x71:
        memo.set(u8(), top());
        break; // BINPUT
      case 0x72:
        memo.set(u32(), top());
        break; // LONG_BINPUT
      case 0x94:
        memo.set(memo.size, top());
        break; // MEMOIZE
      case 0x68:
      case 0x6a: {
        // BINGET, LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) throw new PickleError(`malformed pickle: memo ${key} is not set`);
        stack.push(memo.get(key)!);
        break;
      }
      case 0x30:
        pop();
        break; // POP
      case 0x31:
        popMark();
        break; // POP_MARK
      case 0x32:
        stack.push(top());
        break; // DUP
      case 0x74:
        stack.push(values(popMark()));
        break; // TUPLE
      case 0x6c:
        stack.push(values(popMark()));
        break; // LIST
      case 0x85:
        stack.push([popValue()]);
        break; // TUPLE1
      case 0x86: {
        const b = popValue();
        const a = popValue();
        stack.push([a, b]);
        break;
      } // TUPLE2
      case 0x87: {
        const c = popValue();
        const b = popValue();
        const a = popValue();
        stack.push([a, b, c]);
        break;
      } // TUPLE3
      case 0x64: {
        const m = new Map();
        setItems(m, values(popMark()));
        stack.push(m);
        break;
      } // DICT
      case 0x73: {
        const v = popValue();
        const k = popValue();
        setItems(top(), [k, v]);
        break;
      } // SETITEM
      case 0x75: {
        const items = values(popMark());
        setItems(top(), items);
        break;
      } // SETITEMS
      case 0x61: {
        const v = popValue();
        appendItems(top(), [v]);
        break;
      } // APPEND
      case 0x65: {
        const items = values(popMark());
        appendItems(top(), items);
        break;
      } // APPENDS
      case 0x90: {
        const items = values(popMark());
        appendItems(top(), items);
        break;
      } // ADDITEMS (set)
      case 0x91:
        stack.push(values(popMark()));
        break; // FROZENSET (as a list)
      case 0x63: {
        const module = line();
        const name = line();
        global(module, name);
        break;
      } // GLOBAL
      case 0x93: {
        // STACK_GLOBAL
        const name = popValue();
        const module = popValue();
        if (typeof module !== 'string' || typeof name !== 'string')
          throw new PickleError('malformed pickle: STACK_GLOBAL without names');
        global(module, name);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = popValue();
        if (!Array.isArray(pid)) throw new PickleError('persistent id is not a tuple');
        stack.push(options.persistentLoad(pid));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = popValue();
        const fn = pop();
        if (!isGlobal(fn) || !fn.call)
          throw new PickleError(`malformed pickle: ${isGlobal(fn) ? fn.name : 'a value'} cannot be called`);
        if (!Array.isArray(args)) throw new PickleError('malformed pickle: REDUCE arguments are not a tuple');
        stack.push(fn.call(args));
        break;
      }
      case 0x62: {
        // BUILD: only the instance dict of an OrderedDict (state_dict's `_metadata`), which we drop
        const state = popValue();
        if (!(top() instanceof Map) || !(state instanceof Map || state === null))
          throw new PickleError('malformed pickle: BUILD of a non-dict');
        break;
      }
      case 0x69: {
        // INST module\nname\n: an object construction, never allowed
        const module = line();
        const name = line();
        global(module, name);
        break;
      }
      default:
        throw new PickleError(
          `opcode 0x${op.toString(16).padStart(2, '0')} at byte ${p - 1} is outside the plain-data subset read here ` +
            '(objects are not rebuilt)',
        );
    }
  }
}
