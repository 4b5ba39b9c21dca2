/**
 * Hosts onnxruntime sessions, by default in a worker thread: `InferenceSession.run` is synchronous native
 * work that blocks the event loop for the whole call (docs/runtime.md §1.3), which would freeze progress
 * bars, the HTTP server and AbortSignal handling during a UNet step. In the worker the main thread stays
 * responsive; tensors cross the boundary by transfer (no copy of the underlying buffers).
 *
 * The worker source is plain JavaScript evaluated from a string so that it runs the same from the
 * TypeScript sources (tsx, vitest) and from the compiled package.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { disableOrtTelemetry } from './ortTelemetry.js';
import type { TensorData, TensorType } from './tensor.js';

export interface ValueInfo {
  name: string;
  type: TensorType | string;
  /** Dimensions; strings are symbolic (dynamic) dims. */
  shape: Array<number | string>;
}

export interface SessionSpec {
  path: string;
  /** e.g. ['cpu'] or [{ name: 'cuda', deviceId: 0 }] */
  executionProviders: Array<string | { name: string; deviceId?: number }>;
  intraOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** 0 verbose … 4 fatal. */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** onnxruntime's CPU memory arena (its default: on). */
  enableCpuMemArena?: boolean;
  /** Memory pattern planning: one block per run, sized from the previous run's shapes (onnxruntime's default: on). */
  enableMemPattern?: boolean;
  /** Nodes one after another, or independent branches at once on the inter-op pool (default: sequential). */
  executionMode?: 'sequential' | 'parallel';
  /** onnxruntime's profiler: a JSON trace `<profileFilePrefix>_<date>.json` written when the session is released. */
  profileFilePrefix?: string;
  /** Session config entries (string values), e.g. `{ session: { intra_op: { allow_spinning: '0' } } }`. */
  extra?: Record<string, unknown>;
}

export interface HostedSession {
  readonly path: string;
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>>;
  release(): Promise<void>;
}

export interface OrtHost {
  createSession(spec: SessionSpec): Promise<HostedSession>;
  close(): Promise<void>;
}

const requireHere = createRequire(import.meta.url);

/** Resolved once: the absolute path of onnxruntime-node's entry, so the eval'd worker can require it. */
function ortEntry(): string {
  return requireHere.resolve('onnxruntime-node');
}

// The worker: a tiny RPC server over onnxruntime-node. Kept dependency-free on purpose. The same source serves
// in a worker thread (parentPort) and in a child process (process.send, see ChildProcessOrtHost).
const WORKER_SOURCE = `
const { parentPort: threadPort, workerData } = require('node:worker_threads');
const parentPort = threadPort || {
  on: (event, fn) => process.on(event, fn),
  postMessage: (msg) => process.send(msg),
};
const ort = require(workerData ? workerData.ortEntry : process.env.SVD_ORT_ENTRY);
const sessions = new Map();
let nextId = 1;
function meta(list) {
  return list.map((m) => ({ name: m.name, type: m.isTensor ? m.type : 'non-tensor', shape: m.isTensor ? Array.from(m.shape) : [] }));
}
function toPlain(t) { return { type: t.type, data: t.data, dims: Array.from(t.dims) }; }
parentPort.on('message', async (msg) => {
  const reply = (body, transfer) => parentPort.postMessage({ id: msg.id, ...body }, transfer || []);
  try {
    if (msg.op === 'create') {
      const s = msg.spec;
      const opts = { executionProviders: s.executionProviders, graphOptimizationLevel: s.graphOptimizationLevel || 'all' };
      if (s.intraOpNumThreads) opts.intraOpNumThreads = s.intraOpNumThreads;
      if (s.logSeverityLevel !== undefined) opts.logSeverityLevel = s.logSeverityLevel;
      if (s.enableCpuMemArena !== undefined) opts.enableCpuMemArena = s.enableCpuMemArena;
      if (s.enableMemPattern !== undefined) opts.enableMemPattern = s.enableMemPattern;
      if (s.executionMode) opts.executionMode = s.executionMode;
      if (s.profileFilePrefix) Object.assign(opts, { enableProfiling: true, profileFilePrefix: s.profileFilePrefix });
      if (s.extra) opts.extra = s.extra;
      const session = await ort.InferenceSession.create(s.path, opts);
      const sid = nextId++;
      sessions.set(sid, session);
      reply({ ok: true, sid, inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata) });
    } else if (msg.op === 'run') {
      const session = sessions.get(msg.sid);
      const feeds = {};
      for (const [k, v] of Object.entries(msg.feeds)) feeds[k] = new ort.Tensor(v.type, v.data, v.dims);
      const out = await session.run(feeds);
      const result = {};
      const transfer = [];
      for (const [k, v] of Object.entries(out)) {
        result[k] = toPlain(v);
        transfer.push(v.data.buffer);
      }
      reply({ ok: true, result }, transfer);
    } else if (msg.op === 'release') {
      const session = sessions.get(msg.sid);
      sessions.delete(msg.sid);
      if (session) await session.release();
      reply({ ok: true });
    }
  } catch (err) {
    reply({ ok: false, error: String(err && err.message ? err.message : err) });
  }
});
`;

interface Pending {
  resolve: (v: any) => void;
  reject: (e: Error) => void;
}

/** Where the RPC server runs: a worker thread or a child process. */
interface Channel {
  post(msg: Record<string, unknown>, transfer: ArrayBuffer[]): void;
  /** Keep the event loop alive while calls are pending (and only then). */
  hold(on: boolean): void;
  terminate(): Promise<void>;
}

/** The RPC client shared by both hosts: one session server, requests matched to replies by id. */
abstract class RpcOrtHost implements OrtHost {
  private channel: Channel | undefined;
  private pending = new Map<number, Pending>();
  private nextId = 1;

  /** Starts the server; `onMessage` for each reply, `onExit` when it died. */
  protected abstract start(onMessage: (msg: any) => void, onExit: (err: Error) => void): Channel;

  private ensureChannel(): Channel {
    if (this.channel) return this.channel;
    const onMessage = (msg: { id: number; ok: boolean; error?: string }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg);
      else p.reject(new Error(msg.error));
    };
    const onExit = (err: Error) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      this.channel = undefined;
    };
    disableOrtTelemetry(); // before the first session of the process (ortTelemetry.ts); the child inherits it
    this.channel = this.start(onMessage, onExit);
    this.channel.hold(false);
    return this.channel;
  }

  private call(body: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<any> {
    const channel = this.ensureChannel();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      channel.hold(true);
      channel.post({ id, ...body }, transfer);
    }).finally(() => {
      if (this.pending.size === 0) this.channel?.hold(false);
    });
  }

  async createSession(spec: SessionSpec): Promise<HostedSession> {
    const reply = await this.call({ op: 'create', spec });
    const sid: number = reply.sid;
    return {
      path: spec.path,
      inputs: reply.inputs,
      outputs: reply.outputs,
      run: async (feeds) => {
        // Copy the feeds so the caller's arrays stay usable, then transfer the copies.
        const sent: Record<string, TensorData> = {};
        const transfer: ArrayBuffer[] = [];
        for (const [k, v] of Object.entries(feeds)) {
          const data = v.data.slice() as TensorData['data'];
          sent[k] = { type: v.type, data, dims: v.dims };
          transfer.push(data.buffer as ArrayBuffer);
        }
        const r = await this.call({ op: 'run', sid, feeds: sent }, transfer);
        return r.result as Record<string, TensorData>;
      },
      release: async () => {
        if (this.channel) await this.call({ op: 'release', sid });
      },
    };
  }

  async close(): Promise<void> {
    const c = this.channel;
    this.channel = undefined;
    if (c) await c.terminate();
  }
}

/** Sessions in a dedicated worker thread (the default). */
export class WorkerOrtHost extends RpcOrtHost {
  protected start(onMessage: (msg: any) => void, onExit: (err: Error) => void): Channel {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortEntry: ortEntry() } });
    worker.on('message', onMessage);
    worker.on('error', onExit);
    worker.on('exit', (code) => onExit(new Error(`onnxruntime worker exited (code ${code})`)));
    return {
      post: (msg, transfer) => worker.postMessage(msg, transfer),
      hold: (on) => (on ? worker.ref() : worker.unref()),
      terminate: async () => void (await worker.terminate()),
    };
  }
}

/**
 * Sessions in a child process whose stdout and stderr pass through `filter`: for the WebGPU provider,
 * whose Vulkan loader and Dawn write straight to file descriptor 2 from native code (runtime/webgpu.ts,
 * `isLoaderNoise`), which no thread of ours can silence. Lines the filter keeps go to `forward`; the last
 * few are added to the error when the process dies. Tensors are copied (structured clone), not transferred.
 */
export class ChildProcessOrtHost extends RpcOrtHost {
  constructor(
    private readonly filter: (line: string) => boolean = () => true,
    private readonly forward: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  ) {
    super();
  }

  protected start(onMessage: (msg: any) => void, onExit: (err: Error) => void): Channel {
    const child = spawn(process.execPath, ['-e', WORKER_SOURCE], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
      env: { ...process.env, SVD_ORT_ENTRY: ortEntry() },
    });
    const recent: string[] = [];
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        if (!line.trim() || !this.filter(line)) return;
        recent.push(line);
        if (recent.length > 5) recent.shift();
        this.forward(line);
      });
    }
    child.on('message', onMessage);
    child.on('error', onExit);
    child.on('exit', (code, signal) => {
      const tail = recent.length ? `: ${recent.join(' | ')}` : '';
      onExit(new Error(`onnxruntime process exited (${signal ?? `code ${code}`})${tail}`));
    });
    const streams = [child.stdout!, child.stderr!] as Array<{ ref?: () => void; unref?: () => void }>;
    return {
      post: (msg) => child.send(msg),
      hold: (on) => {
        for (const s of [child, child.channel, ...streams] as Array<
          { ref?: () => void; unref?: () => void } | null | undefined
        >) {
          if (on) s?.ref?.();
          else s?.unref?.();
        }
      },
      terminate: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const gone = new Promise((r) => child.once('exit', r));
        child.ref(); // an unref'd child would let the event loop end before 'exit' (Node: exit code 13)
        child.kill();
        await gone;
      },
    };
  }
}

/** Sessions on the calling thread: less overhead, but `run` blocks the event loop. For benchmarks and tools. */
export class InProcessOrtHost implements OrtHost {
  async createSession(spec: SessionSpec): Promise<HostedSession> {
    disableOrtTelemetry();
    const mod: any = await import('onnxruntime-node');
    const ort = mod.InferenceSession ? mod : mod.default;
    const opts: Record<string, unknown> = {
      executionProviders: spec.executionProviders,
      graphOptimizationLevel: spec.graphOptimizationLevel ?? 'all',
    };
    if (spec.intraOpNumThreads) opts.intraOpNumThreads = spec.intraOpNumThreads;
    if (spec.logSeverityLevel !== undefined) opts.logSeverityLevel = spec.logSeverityLevel;
    if (spec.enableCpuMemArena !== undefined) opts.enableCpuMemArena = spec.enableCpuMemArena;
    if (spec.enableMemPattern !== undefined) opts.enableMemPattern = spec.enableMemPattern;
    if (spec.executionMode) opts.executionMode = spec.executionMode;
    if (spec.profileFilePrefix)
      Object.assign(opts, { enableProfiling: true, profileFilePrefix: spec.profileFilePrefix });
    if (spec.extra) opts.extra = spec.extra;
    const session = await ort.InferenceSession.create(spec.path, opts as any);
    const meta = (list: readonly any[]): ValueInfo[] =>
      list.map((m) => ({
        name: m.name,
        type: m.isTensor ? m.type : 'non-tensor',
        shape: m.isTensor ? Array.from(m.shape) : [],
      }));
    return {
      path: spec.path,
      inputs: meta(session.inputMetadata),
      outputs: meta(session.outputMetadata),
      run: async (feeds) => {
        const ortFeeds: Record<string, any> = {};
        for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor(v.type, v.data as any, v.dims);
        const out = await session.run(ortFeeds);
        const result: Record<string, TensorData> = {};
        for (const [k, v] of Object.entries(out as Record<string, any>)) {
          result[k] = { type: v.type as TensorType, data: v.data as TensorData['data'], dims: Array.from(v.dims) };
        }
        return result;
      },
      release: () => session.release(),
    };
  }

  async close(): Promise<void> {}
}
