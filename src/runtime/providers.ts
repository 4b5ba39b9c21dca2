/**
 * Which onnxruntime execution providers can actually run here. `listSupportedBackends()` only says what
 * the binary knows about ('cuda' is listed even when its library is absent), so each provider is
 * confirmed by creating a session for a one-node model and running it. The probe runs in a child
 * process: a broken CUDA install then cannot take the caller down, and onnxruntime's own log lines
 * about failed library loads stay out of the user's terminal.
 */
import { execFile } from 'node:child_process';
import { ORT_TELEMETRY_OFF } from './ortTelemetry.js';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { findCudaProviderLibrary } from './device.js';

export interface ProviderProbe {
  provider: string;
  /** A session was created and a run returned the right value. */
  ok: boolean;
  /** onnxruntime's error text when not ok (first line, shortened). */
  error?: string;
}

const require = createRequire(import.meta.url);

/** The onnxruntime-node package directory. */
export function ortPackageDir(): string {
  // main entry: <pkg>/dist/index.js
  return dirname(dirname(require.resolve('onnxruntime-node')));
}

/** The installed onnxruntime-node version, e.g. "1.30.0". */
export function ortVersion(): string {
  return (JSON.parse(readFileSync(join(ortPackageDir(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** Path of `libonnxruntime_providers_cuda.so` when `svd setup cuda` (or the ORT installer) put it there. */
export function cudaProviderLibraryPath(): string | undefined {
  return findCudaProviderLibrary();
}

// --- a one-node ONNX model (y = x + x, float32 [1]), written as raw protobuf ---

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
const int = (field: number, n: number) => [...varint(field << 3), ...varint(n)];
const bytes = (field: number, b: number[]) => [...varint((field << 3) | 2), ...varint(b.length), ...b];
const str = (field: number, s: string) => bytes(field, [...Buffer.from(s, 'utf8')]);

/** ModelProto{ir 8, opset 13, graph{Add(x, x) → y}} with x, y: float32 [1]. About 60 bytes. */
export function tinyAddModel(): Uint8Array {
  // ValueInfoProto{name, type: TypeProto{tensor_type{elem_type FLOAT, shape{dim{dim_value 1}}}}}
  const valueInfo = (name: string) => [
    ...str(1, name),
    ...bytes(2, bytes(1, [...int(1, 1), ...bytes(2, bytes(1, int(1, 1)))])),
  ];
  const node = [...str(1, 'x'), ...str(1, 'x'), ...str(2, 'y'), ...str(4, 'Add')];
  const graph = [...bytes(1, node), ...str(2, 'probe'), ...bytes(11, valueInfo('x')), ...bytes(12, valueInfo('y'))];
  return Uint8Array.from([...int(1, 8), ...bytes(7, graph), ...bytes(8, int(2, 13))]);
}

// Plain CommonJS run by `node -e`: creates a session per provider and checks 1.5 + 1.5 = 3.
const PROBE_SCRIPT = `
const ort = require(process.env.SVD_PROBE_ORT);
const model = Buffer.from(process.env.SVD_PROBE_MODEL, 'base64');
(async () => {
  const out = [];
  for (const provider of JSON.parse(process.env.SVD_PROBE_PROVIDERS)) {
    try {
      const session = await ort.InferenceSession.create(model, { executionProviders: [provider], logSeverityLevel: 4 });
      const r = await session.run({ x: new ort.Tensor('float32', new Float32Array([1.5]), [1]) });
      const y = r.y.data[0];
      await session.release();
      out.push(y === 3 ? { provider, ok: true } : { provider, ok: false, error: 'wrong result ' + y });
    } catch (e) {
      out.push({ provider, ok: false, error: String((e && e.message) || e) });
    }
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

export interface ProbeOptions {
  /** Providers to try, each alone (default ['cpu', 'cuda']). */
  providers?: string[];
  timeoutMs?: number;
}

/**
 * Tries each provider on its own (`['cuda']`, not `['cuda', 'cpu']`, which has no fallback and would
 * hide the reason) and reports which can create a session and run.
 *
 * @example (await probeExecutionProviders()).filter((p) => p.ok).map((p) => p.provider) // ['cpu']
 */
export async function probeExecutionProviders(options: ProbeOptions = {}): Promise<ProviderProbe[]> {
  const providers = options.providers ?? ['cpu', 'cuda'];
  const env = {
    ...process.env,
    ...ORT_TELEMETRY_OFF,
    SVD_PROBE_ORT: require.resolve('onnxruntime-node'),
    SVD_PROBE_MODEL: Buffer.from(tinyAddModel()).toString('base64'),
    SVD_PROBE_PROVIDERS: JSON.stringify(providers),
  };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-e', PROBE_SCRIPT],
      { env, timeout: options.timeoutMs ?? 120_000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        try {
          const results = JSON.parse(stdout) as ProviderProbe[];
          resolve(results.map((r) => (r.error ? { ...r, error: shorten(r.error) } : r)));
        } catch {
          // the child died (crash in a native library, timeout): every provider is unusable, say why
          const reason = shorten(stderr.trim() || (err ? err.message : 'no output'));
          resolve(providers.map((provider) => ({ provider, ok: false, error: `probe process failed: ${reason}` })));
        }
      },
    );
  });
}

function shorten(message: string): string {
  const line = message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}
