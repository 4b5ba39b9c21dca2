/**
 * GPU benchmark: every GPU provider that loads here (cuda, webgpu), and the CPU provider at a reduced size.
 *
 *   npx tsx scripts/bench-gpu.ts [--size 1024x576x25] [--cpu-size 128x64x2] [--model svd-xt|tiny]
 *                                [--dir /tmp/svd-bench-gpu] [--providers cuda,webgpu,cpu] [--repeats 3] [--no-results]
 *
 * 1. Says which providers load (a one-node session each; the WebGPU adapter as `svd doctor` describes it), and
 *    clearly when no GPU provider does.
 * 2. `--model svd-xt` (default): writes (once) a seeded random-weight F16 SVD-XT checkpoint with the streaming writer
 *    (4.2 GiB); `--model tiny`: the embedded tiny checkpoint (quick runs, e.g. on lavapipe).
 * 3. Per provider, in a child process (RSS capped at what the machine has free minus 3 GiB): builds the graphs for
 *    that provider's target (timed), creates the four sessions (time, peak host RSS), then measures one UNet step
 *    at the size (CFG batch 2, and split as two batch-1 calls; median of --repeats after a warm-up), the temporal
 *    VAE decode of all frames with chunk = all and chunk 8, CLIP and the VAE encoder; checks outputs are finite;
 *    peak GPU memory from nvidia-smi when present. A run the WebGPU binding guard refuses is reported as such.
 *
 * Output: one JSON line per measure on stdout; a table appended to bench/RESULTS.md with date and machine.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildModel } from '../src/models/build.js';
import { embeddedTinyCheckpoint } from '../src/models/paths.js';
import { readCheckpointConfigs, writeRandomCheckpointDirStreaming } from '../src/models/randomCheckpoint.js';
import { openModelSessions } from '../src/pipeline/session.js';
import { queryGpus } from '../src/runtime/gpu.js';
import { InProcessOrtHost } from '../src/runtime/ortHost.js';
import { ortVersion, probeExecutionProviders } from '../src/runtime/providers.js';
import type { TensorData } from '../src/runtime/tensor.js';
import { describeAdapter, queryWebGpuAdapter } from '../src/runtime/webgpu.js';
import { freeDiskBytes, GiB, memAvailableBytes, peakRss, reportToParent, runChild } from './bench-util.js';

const SCRIPT = fileURLToPath(import.meta.url);
const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

interface Measure {
  measure: string;
  provider: string;
  size?: string;
  ms?: number;
  bytes?: number;
  value?: number | string;
  ok?: boolean;
  note?: string;
}

const { values: opts } = parseArgs({
  options: {
    size: { type: 'string', default: '1024x576x25' },
    'cpu-size': { type: 'string', default: '128x64x2' },
    model: { type: 'string', default: 'svd-xt' },
    dir: { type: 'string', default: '/tmp/svd-bench-gpu' },
    providers: { type: 'string', default: 'cuda,webgpu,cpu' },
    repeats: { type: 'string', default: '3' },
    'no-results': { type: 'boolean', default: false },
    child: { type: 'string' },
    'model-dir': { type: 'string' },
  },
});

function parseSize(s: string): { width: number; height: number; frames: number } {
  const m = /^(\d+)x(\d+)x(\d+)$/.exec(s);
  if (!m) throw new Error(`--size ${s}: expected WIDTHxHEIGHTxFRAMES, e.g. 1024x576x25`);
  return { width: Number(m[1]), height: Number(m[2]), frames: Number(m[3]) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const finite = (d: Float32Array) => d.every(Number.isFinite);
function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** The measurements of one provider, in this (child) process. */
async function childMain(provider: string, modelDir: string, sizeArg: string, repeats: number): Promise<Measure[]> {
  const size = parseSize(sizeArg);
  const out: Measure[] = [];
  const base = { provider, size: sizeArg };
  let gpuPeak = 0;
  const pollGpu = async () => {
    const q = await queryGpus();
    for (const g of q.gpus) gpuPeak = Math.max(gpuPeak, (g.memoryTotalMiB - g.memoryFreeMiB) * 2 ** 20);
  };
  const gpuTimer = provider === 'cuda' ? setInterval(() => void pollGpu(), 500) : undefined;
  let t = performance.now();
  const s = await openModelSessions(modelDir, { device: provider, host: new InProcessOrtHost(), warn: () => {} });
  out.push({
    ...base,
    measure: 'session_create',
    ms: performance.now() - t,
    bytes: peakRss(),
    note: 'bytes: peak host RSS after creating the four sessions',
  });
  const m = s.model.manifest;
  const scale = m.vae.spatialScaleFactor;
  const [h, w, F] = [size.height / scale, size.width / scale, size.frames];
  const C = m.vae.latentChannels;
  const timed = async (measure: string, fn: () => Promise<Float32Array>, times = 1): Promise<void> => {
    const runs: number[] = [];
    let ok = true;
    try {
      for (let i = 0; i < times; i++) {
        t = performance.now();
        ok = finite(await fn()) && ok;
        runs.push(performance.now() - t);
      }
      out.push({ ...base, measure, ms: median(runs), ok, ...(times > 1 ? { note: `median of ${times}` } : {}) });
    } catch (err) {
      out.push({ ...base, measure, ok: false, note: `failed: ${(err as Error).message.split('\n')[0].slice(0, 300)}` });
    }
  };
  const r = s.runners;
  const tensor = (runner: typeof r.unet, name: string, dims: number[], seed: number): TensorData =>
    runner.tensor(
      name,
      noise(
        dims.reduce((a, b) => a * b, 1),
        seed,
      ),
      dims,
    );
  await timed(
    'clip',
    async () =>
      (await r.imageEncoder.run({ pixel_values: tensor(r.imageEncoder, 'pixel_values', [1, 3, 224, 224], 1) })).data,
  );
  await timed(
    'vae_encode',
    async () =>
      (await r.vaeEncoder.run({ sample: tensor(r.vaeEncoder, 'sample', [1, 3, size.height, size.width], 2) })).data,
  );
  const D = m.imageEncoder.embedDim;
  const unetFeeds = {
    sample: tensor(r.unet, 'sample', [2, F, m.unet.inChannels, h, w], 3),
    timestep: { type: 'float32' as const, data: Float32Array.of(0.7), dims: [] },
    encoder_hidden_states: tensor(r.unet, 'encoder_hidden_states', [2, 1, D], 4),
    added_time_ids: r.unet.tensor('added_time_ids', Float32Array.of(6, 127, 0.02, 6, 127, 0.02), [2, 3]),
  };
  await timed('unet_step_warmup', async () => (await r.unet.run(unetFeeds)).data);
  if (out.at(-1)?.ok) await timed('unet_step', async () => (await r.unet.run(unetFeeds)).data, repeats);
  // the same step as two batch-1 calls (cfgBatch split: half the activations, what fits a smaller binding limit)
  const video = (t: TensorData, b: number): TensorData => {
    const per = t.data.length / t.dims[0];
    return { ...t, data: t.data.subarray(b * per, (b + 1) * per), dims: [1, ...t.dims.slice(1)] } as TensorData;
  };
  const splitFeeds = [0, 1].map((b) => ({
    sample: video(unetFeeds.sample, b),
    timestep: unetFeeds.timestep,
    encoder_hidden_states: video(unetFeeds.encoder_hidden_states, b),
    added_time_ids: video(unetFeeds.added_time_ids, b),
  }));
  const splitStep = async () => {
    const [a, b] = [(await r.unet.run(splitFeeds[0])).data, (await r.unet.run(splitFeeds[1])).data];
    const both = new Float32Array(a.length + b.length);
    both.set(a);
    both.set(b, a.length);
    return both;
  };
  await timed('unet_step_split_warmup', splitStep);
  if (out.at(-1)?.ok) await timed('unet_step_split', splitStep, repeats);
  for (const chunk of new Set([F, Math.min(8, F)])) {
    await timed(`vae_decode_chunk${chunk}`, async () => {
      let all: Float32Array = new Float32Array(0);
      for (let start = 0; start < F; start += chunk) {
        const n = Math.min(chunk, F - start);
        all = (await r.vaeDecoder.run({ latent: tensor(r.vaeDecoder, 'latent', [n, C, h, w], 5 + start) })).data;
      }
      return all;
    });
  }
  if (gpuTimer) {
    clearInterval(gpuTimer);
    await pollGpu();
    if (gpuPeak)
      out.push({ ...base, measure: 'gpu_memory_peak', bytes: gpuPeak, note: 'nvidia-smi, used memory, all processes' });
  }
  out.push({ ...base, measure: 'host_rss_peak', bytes: peakRss() });
  await s.close();
  return out;
}

async function main(): Promise<void> {
  const emit = (m: Measure) => process.stdout.write(`${JSON.stringify(m)}\n`);
  const all: Measure[] = [];
  const wanted = opts.providers!.split(',').map((p) => p.trim());
  const probes = await probeExecutionProviders({ providers: wanted.filter((p) => p !== 'cpu') });
  const adapter = wanted.includes('webgpu') ? await queryWebGpuAdapter() : undefined;
  const gpuLoads = probes.filter((p) => p.ok).map((p) => p.provider);
  for (const p of probes) {
    const note = p.provider === 'webgpu' && adapter?.adapter ? describeAdapter(adapter.adapter) : p.error;
    const m = { measure: 'provider_loads', provider: p.provider, ok: p.ok, ...(note ? { note } : {}) };
    emit(m);
    all.push(m);
  }
  if (!gpuLoads.length) {
    const why = probes.map((p) => `${p.provider}: ${p.error}`).join('; ');
    process.stderr.write(
      `bench-gpu: NO GPU PROVIDER LOADS HERE (${why || 'none asked for'}); measuring the CPU provider only, at ${opts['cpu-size']}\n`,
    );
    const m = { measure: 'gpu_providers', provider: 'none', ok: false, note: `no GPU provider loads: ${why}` };
    emit(m);
    all.push(m);
  }
  const checkpoint = await ensureCheckpoint(opts.model!, opts.dir!);
  const runs = [...gpuLoads, ...(wanted.includes('cpu') ? ['cpu'] : [])];
  for (const provider of runs) {
    const emulated = provider === 'webgpu' && adapter?.adapter?.emulated;
    const dtype =
      provider === 'cuda' || (provider === 'webgpu' && adapter?.adapter?.shaderF16 && !emulated)
        ? 'float16'
        : 'float32';
    const size = provider === 'cpu' ? opts['cpu-size']! : opts.size!;
    const modelDir = join(opts.dir!, `graphs-${opts.model}-${provider}-${dtype}`);
    let t = performance.now();
    await buildModel({
      checkpoint,
      outDir: modelDir,
      target: provider === 'cpu' ? 'cpu' : (provider as 'cuda' | 'webgpu'),
      dtype,
    });
    const build = { measure: 'build', provider, ms: performance.now() - t, note: `${opts.model} ${dtype}` };
    emit(build);
    all.push(build);
    t = performance.now();
    const cap = Math.max(2 * GiB, memAvailableBytes() - 3 * GiB);
    const child = await runChild<Measure[]>(
      SCRIPT,
      ['--child', provider, '--model-dir', modelDir, '--size', size, '--repeats', opts.repeats!],
      { rssCapBytes: cap },
    );
    if (!child.result) {
      const m = {
        measure: 'child',
        provider,
        ok: false,
        note: child.killedForMemory
          ? `killed above ${(cap / GiB).toFixed(1)} GiB RSS`
          : `exit ${child.exitCode}: ${child.stderrTail.slice(-300)}`,
      };
      emit(m);
      all.push(m);
      continue;
    }
    for (const m of child.result) {
      const withPeak = m.measure === 'host_rss_peak' ? { ...m, bytes: Math.max(m.bytes ?? 0, child.polledPeakRss) } : m;
      emit(withPeak);
      all.push(withPeak);
    }
  }
  if (!opts['no-results']) appendResults(all);
}

async function ensureCheckpoint(model: string, dir: string): Promise<string> {
  if (model === 'tiny') return embeddedTinyCheckpoint();
  if (model !== 'svd-xt') throw new Error(`--model ${model}: use svd-xt or tiny`);
  const out = join(dir, 'checkpoint-svd-xt');
  if (existsSync(join(out, 'unet', 'config.json'))) return out;
  mkdirSync(dir, { recursive: true });
  if (freeDiskBytes(dir) < 5.5 * GiB)
    throw new Error(`${dir}: the random SVD-XT checkpoint needs 4.2 GiB plus room; free disk space or pass --dir`);
  const t = performance.now();
  writeRandomCheckpointDirStreaming(out, readCheckpointConfigs(join(ROOT, 'models', 'configs', 'svd-xt')), {
    seed: 1,
    dtype: 'F16',
  });
  process.stdout.write(
    `${JSON.stringify({ measure: 'write_checkpoint', provider: 'none', ms: performance.now() - t, note: 'random F16 SVD-XT, streaming writer' })}\n`,
  );
  return out;
}

function appendResults(all: Measure[]): void {
  const date = new Date().toISOString().slice(0, 10);
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const machine = `${cpus().length} vCPU (${cpu}), ${(totalmem() / GiB).toFixed(0)} GiB RAM, Node ${process.version}, onnxruntime-node ${ortVersion()}`;
  const fmt = (m: Measure) =>
    [
      m.provider,
      m.measure,
      m.size ?? '',
      m.ms !== undefined ? `${(m.ms / 1000).toFixed(2)} s` : '',
      m.bytes !== undefined ? `${(m.bytes / 2 ** 20).toFixed(0)} MiB` : '',
      m.ok === undefined ? '' : m.ok ? 'yes' : 'no',
      (m.note ?? '').replace(/\|/g, '/'),
    ].join(' | ');
  const lines = [
    '',
    `### bench-gpu ${date}: ${opts.model}, --size ${opts.size}, --cpu-size ${opts['cpu-size']}`,
    '',
    `- **Machine:** ${machine}.`,
    `- **Command:** \`npx tsx scripts/bench-gpu.ts ${process.argv.slice(2).join(' ')}\``,
    '',
    '| provider | measure | size | time | memory | ok/finite | note |',
    '|---|---|---|---|---|---|---|',
    ...all.map((m) => `| ${fmt(m)} |`),
    '',
  ];
  const path = join(ROOT, 'bench', 'RESULTS.md');
  const heading = '## 9. GPU benchmark (`scripts/bench-gpu.ts`)';
  if (!readFileSync(path, 'utf8').includes(heading)) appendFileSync(path, `\n${heading}\n`);
  appendFileSync(path, `${lines.join('\n')}\n`);
}

if (opts.child) {
  childMain(opts.child, opts['model-dir']!, opts.size!, Number(opts.repeats)).then(reportToParent, (err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    process.stderr.write(`bench-gpu: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
