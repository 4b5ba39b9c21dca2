/**
 * Pipeline overhead benchmark: how much of a generation is spent outside onnxruntime's `run`
 * (preprocessing, tensor conversion, CFG, Euler steps, worker messaging, frame conversion), measured on
 * the embedded tiny model where the sessions themselves are cheap, so the overhead is what shows.
 * Numbers are medians over the timed generations (per-step figures: over all their steps).
 *
 *   npx tsx scripts/bench-pipeline.ts [--runs 5] [--steps 25] [--frames 14] [--threads N] [--profile]
 *   npx tsx scripts/bench-pipeline.ts --fresh --configs models/configs/medium --size 256x128 --frames 8 --threads 2
 *                                     [--set default,arena+pattern,...] [--profile]
 *
 * The tiny checkpoint (models/tiny-svd) is built into a temporary directory (fp32, CPU). Two pipelines are
 * opened, one with its sessions in the worker thread (the default) and one in-process (`inWorker: false`);
 * after a warm-up generation each, they alternate for `--runs` timed generations with `skipVideo`. Session run time is measured by an OrtHost
 * wrapper around every `run` call, on the calling side: for the worker that includes the messaging.
 *
 * `--fresh` measures what a user's first generation costs instead: each option set (`--set`) runs one generation,
 * with no warm-up, in a fresh child process (the default pipeline: sessions in the worker thread), and reports its
 * peak RSS (VmHWM), load time, per-step times and total. `--configs` builds a seeded random checkpoint from a
 * directory of diffusers configs (models/configs/…) instead of the embedded tiny model; `--size` is W×H in pixels.
 * With `--profile` the child runs in-process with onnxruntime's profiler (top ops by time) and verbose log, from
 * which the CPU memory arena's growth and peak are read.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildModel } from '../src/models/build.js';
import { embeddedTinyCheckpoint } from '../src/models/paths.js';
import { readCheckpointConfigs, writeRandomCheckpointDir } from '../src/models/randomCheckpoint.js';
import { createPipeline, type PipelineOptions, type SvdPipeline } from '../src/pipeline/pipeline.js';
import {
  InProcessOrtHost,
  WorkerOrtHost,
  type HostedSession,
  type OrtHost,
  type SessionSpec,
} from '../src/runtime/ortHost.js';
import { GiB, MiB, bytes, duration, memAvailableBytes, reportToParent, runChild } from './bench-util.js';

const SCRIPT = fileURLToPath(import.meta.url);

interface RunRecord {
  graph: string;
  ms: number;
  /** VmHWM of this process after the run (bytes). */
  peakRss: number;
  /** CPU time of the whole process during the run (ms): less swayed than `ms` by other work on a shared machine. */
  cpuMs: number;
}

/** Peak RSS (VmHWM) of this process, worker threads included, in bytes. */
function vmHwm(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Wraps an OrtHost and records the duration of every `run` call, per graph file. */
class TimingOrtHost implements OrtHost {
  runs: RunRecord[] = [];
  /** Print every run's time and the peak RSS so far on stderr (`--fresh` children). */
  progress = false;
  /** With a directory: every session writes onnxruntime's profile there (`--profile`). */
  constructor(
    private readonly inner: OrtHost,
    private readonly profileDir?: string,
  ) {}

  async createSession(spec: SessionSpec): Promise<HostedSession> {
    const graph = basename(spec.path, '.onnx');
    const s = await this.inner.createSession(
      this.profileDir ? { ...spec, profileFilePrefix: join(this.profileDir, `${graph}-${++profiles}`) } : spec,
    );
    return {
      path: s.path,
      inputs: s.inputs,
      outputs: s.outputs,
      run: async (feeds) => {
        const t = performance.now();
        const cpu = process.cpuUsage();
        const out = await s.run(feeds);
        const used = process.cpuUsage(cpu);
        const run = { graph, ms: performance.now() - t, peakRss: vmHwm(), cpuMs: (used.user + used.system) / 1000 };
        this.runs.push(run);
        if (this.progress)
          process.stderr.write(
            `  ${graph} run ${duration(run.ms)} (CPU ${duration(run.cpuMs)}), VmHWM ${bytes(run.peakRss)}\n`,
          );
        return out;
      },
      release: () => s.release(),
    };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

let profiles = 0;

/** Sums onnxruntime profile traces by graph and op type; prints the top ops by time. */
function printProfiles(dir: string, top = 12): void {
  const byOp = new Map<string, { ms: number; calls: number }>();
  let total = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const graph = file.replace(/-\d+_.*$/, '');
    for (const e of JSON.parse(readFileSync(join(dir, file), 'utf8')) as Array<{
      cat?: string;
      name?: string;
      dur?: number;
      args?: { op_name?: string };
    }>) {
      if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || !e.args?.op_name) continue;
      const key = `${graph} ${e.args.op_name}`;
      const ms = (e.dur ?? 0) / 1000;
      const v = byOp.get(key) ?? { ms: 0, calls: 0 };
      v.ms += ms;
      v.calls++;
      byOp.set(key, v);
      total += ms;
    }
  }
  console.log(`
onnxruntime profile: ${total.toFixed(0)} ms in kernels; top ${top} graph/op types by time`);
  console.log('| graph | op | time | share | calls |');
  console.log('|---|---|---|---|---|');
  for (const [key, v] of [...byOp].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
    const [graph, op] = key.split(' ');
    console.log(`| ${graph} | ${op} | ${v.ms.toFixed(0)} ms | ${((100 * v.ms) / total).toFixed(1)}% | ${v.calls} |`);
  }
}

interface GenerationMeasure {
  total: number;
  runTotal: number;
  runByGraph: Record<string, number>;
  steps: number;
  /** Per step: pipeline step time − UNet run time. */
  stepOverhead: number[];
  stepTime: number[];
  preprocess: number;
  encodeOverhead: number;
  decodeOverhead: number;
}

/** Median: robust to the odd slow run on a machine shared with other work. */
const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

interface Mode {
  label: string;
  host: TimingOrtHost;
  pipeline: SvdPipeline;
  measures: GenerationMeasure[];
}

async function openMode(
  label: string,
  modelDir: string,
  inWorker: boolean,
  intraOpNumThreads?: number,
  profileDir?: string,
): Promise<Mode> {
  const host = new TimingOrtHost(inWorker ? new WorkerOrtHost() : new InProcessOrtHost(), profileDir);
  const pipeline = await createPipeline({ modelDir, device: 'cpu', host, inWorker, intraOpNumThreads, log: () => {} });
  return { label, host, pipeline, measures: [] };
}

/** One generation on a mode; the runs recorded by its host are attributed to the pipeline's stages. */
async function generateOnce(mode: Mode, request: Record<string, unknown>, seed: number): Promise<GenerationMeasure> {
  mode.host.runs = [];
  const r = await mode.pipeline.generate({ ...request, seed } as never, { skipVideo: true });
  const byGraph: Record<string, number> = {};
  for (const x of mode.host.runs) byGraph[x.graph] = (byGraph[x.graph] ?? 0) + x.ms;
  const unetRuns = mode.host.runs.filter((x) => x.graph === 'unet').map((x) => x.ms);
  const t = r.timings;
  return {
    total: t.total,
    runTotal: mode.host.runs.reduce((a, x) => a + x.ms, 0),
    runByGraph: byGraph,
    steps: r.stepTimings.length,
    stepTime: r.stepTimings,
    stepOverhead: r.stepTimings.map((s, k) => s - unetRuns[k]),
    preprocess: t.preprocess,
    encodeOverhead: t.encode - (byGraph.image_encoder ?? 0) - (byGraph.vae_encoder ?? 0),
    decodeOverhead: t.decode - (byGraph.vae_decoder ?? 0),
  };
}

function summarize(label: string, ms: GenerationMeasure[]): Record<string, number | string> {
  const total = median(ms.map((m) => m.total));
  const run = median(ms.map((m) => m.runTotal));
  // per generation: averages over its steps; then the median over generations (one statistic for all three)
  const perGen = (f: (m: GenerationMeasure) => number[]) =>
    median(ms.map((m) => f(m).reduce((a, b) => a + b, 0) / m.steps));
  const stepOverhead = perGen((m) => m.stepOverhead);
  const stepTime = perGen((m) => m.stepTime);
  const unetRun = perGen((m) => [m.runByGraph.unet ?? 0]);
  const row = {
    mode: label,
    generations: ms.length,
    totalMs: total,
    sessionRunMs: run,
    overheadMs: median(ms.map((m) => m.total - m.runTotal)),
    overheadPct: median(ms.map((m) => (100 * (m.total - m.runTotal)) / m.total)),
    unetRunPerStepMs: unetRun,
    stepMs: stepTime,
    stepOverheadMs: stepOverhead,
    stepOverheadPct: median(
      ms.map((m) => (100 * m.stepOverhead.reduce((a, b) => a + b, 0)) / m.stepTime.reduce((a, b) => a + b, 0)),
    ),
    preprocessMs: median(ms.map((m) => m.preprocess)),
    encodeOverheadMs: median(ms.map((m) => m.encodeOverhead)),
    decodeOverheadMs: median(ms.map((m) => m.decodeOverhead)),
  };
  const f = (x: number) => x.toFixed(2);
  console.log(`\n${label} (${ms.length} generations, ${ms[0].steps} steps each)`);
  console.log(
    `  total ${f(row.totalMs)} ms, inside session.run ${f(row.sessionRunMs)} ms → overhead ${f(row.overheadMs)} ms (${row.overheadPct.toFixed(1)}%)`,
  );
  console.log(
    `  per step: ${f(row.stepMs)} ms, of which UNet run ${f(row.unetRunPerStepMs)} ms → overhead ${f(row.stepOverheadMs)} ms/step (${row.stepOverheadPct.toFixed(1)}%)`,
  );
  console.log(
    `  outside the steps: preprocess ${f(row.preprocessMs)} ms, encode overhead ${f(row.encodeOverheadMs)} ms, decode overhead ${f(row.decodeOverheadMs)} ms`,
  );
  return row;
}

/** Session option sets `--fresh --set` can try (over the pipeline's own defaults). */
const SETS: Record<string, Pick<PipelineOptions, 'sessionOptions' | 'releaseBetweenStages'>> = {
  /** What the pipeline does (src/runtime/cpu.ts CPU_SESSION_DEFAULTS): arena on, memory patterns off. */
  default: {},
  /** onnxruntime's own defaults (what the pipeline did before bench/RESULTS.md §10). */
  'arena+pattern': { sessionOptions: { enableCpuMemArena: true, enableMemPattern: true } },
  'pattern-only': { sessionOptions: { enableCpuMemArena: false, enableMemPattern: true } },
  neither: { sessionOptions: { enableCpuMemArena: false, enableMemPattern: false } },
  parallel: { sessionOptions: { executionMode: 'parallel' } },
  'no-spin': { sessionOptions: { extra: { session: { intra_op: { allow_spinning: '0' } } } } },
  /** What `svd generate` does: each session released once the generation is done with it. */
  release: { releaseBetweenStages: true },
};

interface FreshReport {
  loadMs: number;
  totalMs: number;
  timings: Record<string, number>;
  stepMs: number[];
  unetRunMs: number[];
  unetCpuMs: number[];
  /** VmHWM after loading, and after each stage's last run. */
  peakAfterLoad: number;
  peakByGraph: Record<string, number>;
  peakRss: number;
}

interface FreshArgs {
  model: string;
  set: string;
  image: string;
  width: number;
  height: number;
  frames: number;
  steps: number;
  threads?: number;
  profileDir?: string;
}

/** In the child: one generation on a freshly opened pipeline, no warm-up. */
async function freshChild(a: FreshArgs): Promise<void> {
  const inner = a.profileDir ? new InProcessOrtHost() : new WorkerOrtHost();
  const host = new TimingOrtHost(inner, a.profileDir);
  host.progress = true;
  const t0 = performance.now();
  const pipeline = await createPipeline({
    modelDir: a.model,
    device: 'cpu',
    host,
    inWorker: !a.profileDir,
    intraOpNumThreads: a.threads,
    ...SETS[a.set],
    log: () => {},
  });
  const loadMs = performance.now() - t0;
  const peakAfterLoad = vmHwm();
  const { image, width, height, frames, steps } = a;
  const r = await pipeline.generate({ image, width, height, frames, steps, seed: 1 } as never, { skipVideo: true });
  await pipeline.close();
  await host.close();
  const peakByGraph: Record<string, number> = {};
  for (const x of host.runs) peakByGraph[x.graph] = x.peakRss;
  reportToParent({
    loadMs,
    totalMs: r.timings.total,
    timings: r.timings as unknown as Record<string, number>,
    stepMs: r.stepTimings,
    unetRunMs: host.runs.filter((x) => x.graph === 'unet').map((x) => x.ms),
    unetCpuMs: host.runs.filter((x) => x.graph === 'unet').map((x) => x.cpuMs),
    peakAfterLoad,
    peakByGraph,
    peakRss: vmHwm(),
  } satisfies FreshReport);
}

/** Per graph: the largest CPU arena onnxruntime held and the largest bytes in use (profile node args). */
function arenaPeaks(dir: string): Record<string, { held: number; inUse: number }> {
  const out: Record<string, { held: number; inUse: number }> = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const graph = file.replace(/-\d+_.*$/, '');
    const v = (out[graph] ??= { held: 0, inUse: 0 });
    for (const e of JSON.parse(readFileSync(join(dir, file), 'utf8')) as Array<{
      cat?: string;
      args?: { mem_arena_held?: string; mem_in_use_peak?: string };
    }>) {
      if (e.cat !== 'Node' || !e.args) continue;
      v.held = Math.max(v.held, Number(e.args.mem_arena_held ?? 0));
      v.inUse = Math.max(v.inUse, Number(e.args.mem_in_use_peak ?? 0));
    }
  }
  return out;
}

/** `--fresh`: each option set in its own child process; one row per set. */
async function freshRuns(base: Omit<FreshArgs, 'set'>, sets: string[], tmp: string): Promise<void> {
  const [la1] = loadavg();
  console.log(`load average at start: ${la1.toFixed(2)}; ${base.threads ?? 'default'} threads`);
  console.log('| set | load | peak RSS | peak after load | UNet step 1, 2 | last 2 | median step | total |');
  console.log('|---|---|---|---|---|---|---|---|');
  const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
  for (const set of sets) {
    if (!(set in SETS)) throw new Error(`--set: unknown set "${set}" (known: ${Object.keys(SETS).join(', ')})`);
    const profileDir = base.profileDir ? join(tmp, `profile-${set}`) : undefined;
    if (profileDir) mkdirSync(profileDir);
    const run = await runChild<FreshReport>(SCRIPT, ['--child', JSON.stringify({ ...base, set, profileDir })], {
      rssCapBytes: Math.min(12 * GiB, memAvailableBytes() - 3 * GiB),
      echoStderr: true,
    });
    const r = run.result;
    if (!r) {
      const why = run.killedForMemory
        ? 'killed at the RSS cap'
        : run.stderrTail.trim().split('\n').slice(-3).join(' | ');
      console.log(`| ${set} | ${why} |`);
      continue;
    }
    const s = (xs: number[]) => xs.map((x) => `${(x / 1000).toFixed(2)} s`).join(', ');
    console.log(
      `| ${set} | ${duration(r.loadMs)} | ${mib(r.peakRss)} | ${mib(r.peakAfterLoad)} | ${s(r.unetRunMs.slice(0, 2))} | ` +
        `${s(r.unetRunMs.slice(-2))} | ${s([median(r.unetRunMs)])} | ${duration(r.totalMs)} |`,
    );
    console.log(`  UNet CPU time per step (s): ${r.unetCpuMs.map((x) => (x / 1000).toFixed(2)).join(' ')}`);
    console.log(
      `  steps (pipeline, s): ${r.stepMs.map((x) => (x / 1000).toFixed(2)).join(' ')}; stages: ` +
        `${Object.entries(r.timings)
          .map(([k, v]) => `${k} ${duration(v)}`)
          .join(', ')}; VmHWM after each graph: ${Object.entries(r.peakByGraph)
          .map(([k, v]) => `${k} ${mib(v)}`)
          .join(', ')}`,
    );
    if (profileDir) {
      printProfiles(profileDir);
      for (const [graph, p] of Object.entries(arenaPeaks(profileDir)))
        console.log(`  arena ${graph}: held ${mib(p.held)}, in use at peak ${mib(p.inUse)}`);
    }
  }
  console.log(`load average at end: ${loadavg()[0].toFixed(2)}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      steps: { type: 'string', default: '25' },
      frames: { type: 'string', default: '14' },
      /** onnxruntime intra-op threads (default: onnxruntime's choice, all cores). */
      threads: { type: 'string' },
      /** onnxruntime's profiler on the in-process pipeline: top ops by time, per-step UNet times, peak RSS. */
      profile: { type: 'boolean', default: false },
      /** One generation per option set, each in a fresh child process (peak RSS, per-step times). */
      fresh: { type: 'boolean', default: false },
      set: { type: 'string', default: 'default' },
      /** A directory of diffusers configs to build a seeded random model from (default: the embedded tiny model). */
      configs: { type: 'string' },
      /** W×H in pixels (default: the model's). */
      size: { type: 'string' },
      child: { type: 'string' },
      image: {
        type: 'string',
        default: resolve(fileURLToPath(new URL('../test/fixtures/reference/input_64x128.png', import.meta.url))),
      },
    },
  });
  if (values.child) return freshChild(JSON.parse(values.child) as FreshArgs);
  const runs = Number(values.runs);
  const tmp = mkdtempSync(join(tmpdir(), 'svd-bench-pipeline-'));
  try {
    const modelDir = join(tmp, 'model');
    let checkpoint = embeddedTinyCheckpoint();
    if (values.configs) {
      checkpoint = join(tmp, 'checkpoint');
      writeRandomCheckpointDir(checkpoint, readCheckpointConfigs(values.configs), 20261121);
    }
    const built = await buildModel({
      checkpoint,
      outDir: modelDir,
      dtype: 'float32',
      target: 'cpu',
      modelVariant: values.configs ? 'custom' : 'tiny',
    });
    console.log(`model built in ${built.ms.toFixed(0)} ms → ${modelDir}`);
    const threads = values.threads ? Number(values.threads) : undefined;
    if (values.fresh) {
      const [width, height] = (values.size ?? `${built.manifest.defaults.width}x${built.manifest.defaults.height}`)
        .split('x')
        .map(Number);
      const base = { model: modelDir, image: values.image!, width, height, threads };
      console.log(`request: ${width}×${height}, ${values.frames} frames, ${values.steps} steps, CFG on, skipVideo`);
      const profileDir = values.profile ? tmp : undefined;
      const o = { ...base, frames: Number(values.frames), steps: Number(values.steps), profileDir };
      return await freshRuns(o, values.set!.split(','), tmp);
    }
    const request = { image: values.image, steps: Number(values.steps), frames: Number(values.frames), device: 'cpu' };
    console.log(
      `request: ${JSON.stringify(request)} (size: the model's default ${built.manifest.defaults.width}×${built.manifest.defaults.height})`,
    );
    const profileDir = values.profile ? join(tmp, 'profile') : undefined;
    if (profileDir) mkdirSync(profileDir);
    const modes = values.profile
      ? [await openMode('in-process, profiled', modelDir, false, threads, profileDir)]
      : [
          await openMode('worker thread (default)', modelDir, true, threads),
          await openMode('in-process (inWorker: false)', modelDir, false, threads),
        ];
    try {
      // warm-up, then the modes alternate so that drifting background load affects both alike
      for (const m of modes) await generateOnce(m, request, 999);
      for (let i = 0; i < runs; i++) for (const m of modes) m.measures.push(await generateOnce(m, request, 1000 + i));
    } finally {
      for (const m of modes) {
        await m.pipeline.close();
        await m.host.close();
      }
    }
    const rows = modes.map((m) => summarize(m.label, m.measures));
    if (profileDir) {
      printProfiles(profileDir);
      const steps = modes[0].measures.map((m) => m.stepTime.map((x) => x.toFixed(0)).join(', '));
      console.log(
        `\nUNet step times per generation (ms; the warm-up generation is not listed):\n${steps.map((s) => `  ${s}`).join('\n')}`,
      );
      console.log(`peak RSS of this process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
      return;
    }
    const [w, p] = rows as Array<Record<string, number>>;
    console.log(
      `\nworker − in-process, medians: Σrun ${(w.sessionRunMs - p.sessionRunMs).toFixed(2)} ms per generation, UNet run ${(w.unetRunPerStepMs - p.unetRunPerStepMs).toFixed(2)} ms per step (messaging + copies; noise on a shared machine)`,
    );
    console.log(
      `\nJSON ${JSON.stringify({ date: new Date().toISOString(), node: process.version, threads: threads ?? 'default', request, rows })}`,
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.exit(1);
});
