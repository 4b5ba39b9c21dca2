/**
 * Pipeline overhead benchmark: how much of a generation is spent outside onnxruntime's `run`
 * (preprocessing, tensor conversion, CFG, Euler steps, worker messaging, frame conversion), measured on
 * the embedded tiny model where the sessions themselves are cheap, so the overhead is what shows.
 * Numbers are medians over the timed generations (per-step figures: over all their steps).
 *
 *   npx tsx scripts/bench-pipeline.ts [--runs 5] [--steps 25] [--frames 14] [--threads N] [--profile]
 *
 * The tiny checkpoint (models/tiny-svd) is built into a temporary directory (fp32, CPU). Two pipelines are
 * opened, one with its sessions in the worker thread (the default) and one in-process (`inWorker: false`);
 * after a warm-up generation each, they alternate for `--runs` timed generations with `skipVideo`. Session run time is measured by an OrtHost
 * wrapper around every `run` call, on the calling side: for the worker that includes the messaging.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildModel } from '../src/models/build.js';
import { embeddedTinyCheckpoint } from '../src/models/paths.js';
import { createPipeline, type SvdPipeline } from '../src/pipeline/pipeline.js';
import {
  InProcessOrtHost,
  WorkerOrtHost,
  type HostedSession,
  type OrtHost,
  type SessionSpec,
} from '../src/runtime/ortHost.js';

interface RunRecord {
  graph: string;
  ms: number;
}

/** Wraps an OrtHost and records the duration of every `run` call, per graph file. */
class TimingOrtHost implements OrtHost {
  runs: RunRecord[] = [];
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
        const out = await s.run(feeds);
        this.runs.push({ graph, ms: performance.now() - t });
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
      image: {
        type: 'string',
        default: resolve(fileURLToPath(new URL('../test/fixtures/reference/input_64x128.png', import.meta.url))),
      },
    },
  });
  const runs = Number(values.runs);
  const tmp = mkdtempSync(join(tmpdir(), 'svd-bench-pipeline-'));
  try {
    const modelDir = join(tmp, 'tiny');
    const built = await buildModel({
      checkpoint: embeddedTinyCheckpoint(),
      outDir: modelDir,
      dtype: 'float32',
      target: 'cpu',
      modelVariant: 'tiny',
    });
    console.log(`tiny model built in ${built.ms.toFixed(0)} ms → ${modelDir}`);
    const request = { image: values.image, steps: Number(values.steps), frames: Number(values.frames), device: 'cpu' };
    console.log(
      `request: ${JSON.stringify(request)} (size: the model's default ${built.manifest.defaults.width}×${built.manifest.defaults.height})`,
    );
    const threads = values.threads ? Number(values.threads) : undefined;
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
