/**
 * The memory estimate (src/models/memory.ts) and what uses it: refusals before anything loads in the CLI and in
 * every server dialect (each in its own error shape and field names), `--force`, and `decodeChunkSize: auto`.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBudgetError } from '../src/errors.js';
import {
  checkMemory,
  estimateMemory,
  largestDecodeChunk,
  modelMemoryFacts,
  type MemoryRequest,
  type ModelMemoryFacts,
} from '../src/models/memory.js';
import { assertFitsMemory, parseMemorySize } from '../src/pipeline/admission.js';
import { resolveForModel } from '../src/pipeline/pipeline.js';
import { startServer, type RunningServer } from '../src/server/index.js';
import type { ModelManifest } from '../src/models/manifest.js';
import { fixtureBytes, FIXTURE_IMAGE } from './server-helpers.js';
import { SVD_XT_FACTS } from './helpers/memoryFacts.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'svd.js');
const GiB = 2 ** 30;

/** SVD-XT as `buildModel` records it (fp16 weights, float32 CPU graphs). */
const XT = SVD_XT_FACTS;
const BASE: MemoryRequest = { width: 1024, height: 576, frames: 25, decodeChunkSize: 8, guidance: true };
const host = (r: Partial<MemoryRequest>, f: Partial<ModelMemoryFacts> = {}) =>
  estimateMemory({ ...XT, ...f }, { ...BASE, ...r }, 'cpu').hostBytes;

describe('memory estimate', () => {
  it('never shrinks when the size, frames or decode chunk grow', () => {
    for (const [field, values] of [
      ['width', [64, 256, 512, 1024, 2048]],
      ['height', [64, 320, 576, 2048]],
      ['frames', [1, 2, 14, 25, 128]],
      ['decodeChunkSize', [1, 2, 8, 25]],
    ] as const) {
      const bytes = values.map((v) => host({ [field]: v, ...(field === 'frames' ? { decodeChunkSize: v } : {}) }));
      for (let i = 1; i < bytes.length; i++) expect(bytes[i], `${field} ${values[i]}`).toBeGreaterThan(bytes[i - 1]);
    }
    expect(host({ guidance: false })).toBeLessThan(host({ guidance: true }));
    expect(host({}, { dtype: 'float16' })).toBeLessThan(host({}));
    // materialised scores: quadratic in the latent pixels, so they dominate at full size
    expect(host({}, { attention: 'primitive' })).toBeGreaterThan(3 * host({}));
  });

  it('converted weights (builder 4) load at 1.00× their float32 bytes on CPU, Cast over fp16 at 1.77×', () => {
    const convert = estimateMemory({ ...XT, weightStorage: 'convert' }, BASE, 'cpu').parts.weights;
    const reference = estimateMemory(XT, BASE, 'cpu').parts.weights;
    const bytes = Object.values(XT.computeWeightBytes).reduce((a, b) => a + b, 0);
    expect(convert).toBe(bytes);
    expect(reference).toBeCloseTo(1.77 * bytes, -3);
    const manifest = (weightStorage?: string) =>
      ({
        vae: { spatialScaleFactor: 8 },
        source: { dtype: 'float32', ...(weightStorage ? { weightStorage } : {}) },
      }) as unknown as ModelManifest;
    expect(modelMemoryFacts(manifest('convert')).weightStorage).toBe('convert');
    expect(modelMemoryFacts(manifest()).weightStorage).toBe('reference');
  });

  it('puts the weights and activations on the device for GPU providers', () => {
    const cuda = estimateMemory(XT, BASE, 'cuda');
    const cpu = estimateMemory(XT, BASE, 'cpu');
    expect(cuda.deviceBytes).toBeGreaterThan(cpu.parts.weights);
    expect(cuda.hostBytes).toBeLessThan(cpu.hostBytes);
    expect(cpu.deviceBytes).toBe(0);
  });

  it('the largest size, frames and decode chunk it names fit, and one step more does not', () => {
    // a budget between what 256x256 and the full request need
    const budget = { hostBytes: (host({ width: 256, height: 256 }) + host({})) / 2 };
    const v = checkMemory(XT, BASE, 'cpu', budget, 64);
    expect(v.fits).toBe(false);
    const { width, height, frames, decodeChunkSize } = v.largest;
    expect(width! % 64).toBe(0);
    expect(checkMemory(XT, { ...BASE, width: width!, height: height! }, 'cpu', budget).fits).toBe(true);
    expect(
      checkMemory(XT, { ...BASE, frames: frames!, decodeChunkSize: Math.min(8, frames!) }, 'cpu', budget).fits,
    ).toBe(true);
    expect(
      checkMemory(XT, { ...BASE, frames: frames! + 1, decodeChunkSize: Math.min(8, frames! + 1) }, 'cpu', budget).fits,
    ).toBe(false);
    if (decodeChunkSize !== undefined)
      expect(checkMemory(XT, { ...BASE, decodeChunkSize }, 'cpu', budget).fits).toBe(true);
    expect(checkMemory(XT, { ...BASE, width: 256, height: 256 }, 'cpu', budget).fits).toBe(true);
  });

  it('decodeChunkSize auto is the largest chunk that fits the budget', () => {
    const manifest = tinyManifest();
    // room for the decoder at about half the frames
    const small = { ...BASE, width: 256, height: 256, frames: 25 };
    const budget = {
      hostBytes: (host({ ...small, decodeChunkSize: 1 }) + host({ ...small, decodeChunkSize: 25 })) / 2,
    };
    const memory = { provider: 'cpu' as const, budget, facts: XT };
    const req = resolveForModel(
      { image: 'x.png', width: 256, height: 256, frames: 25, decodeChunkSize: 'auto' },
      manifest,
      () => 1,
      memory,
    );
    const expected = largestDecodeChunk(XT, { ...BASE, width: 256, height: 256, frames: 25 }, 'cpu', budget);
    expect(expected).toBeGreaterThan(1);
    expect(expected).toBeLessThan(25);
    expect(req.decodeChunkSize).toBe(expected);
    const roomy = resolveForModel(
      { image: 'x.png', width: 256, height: 256, frames: 25, decodeChunkSize: 'auto' },
      manifest,
      () => 1,
      { ...memory, budget: { hostBytes: 1024 * GiB } },
    );
    expect(roomy.decodeChunkSize).toBe(25);
    expect(() => assertFitsMemory(req, manifest, memory)).not.toThrow();
    expect(() => resolveForModel({ image: 'x.png', decodeChunkSize: 'some' as never }, manifest)).toThrow(
      /decodeChunkSize: must be a whole number from 1 to 128, or auto/,
    );
  });

  it('parses memory sizes and refuses nonsense, naming the flag', () => {
    expect(parseMemorySize('8G', '--max-memory')).toBe(8 * GiB);
    expect(parseMemorySize('512MiB', '--max-memory')).toBe(512 * 2 ** 20);
    expect(parseMemorySize('1.5g', '--max-memory')).toBe(1.5 * GiB);
    expect(() => parseMemorySize('lots', '--max-memory')).toThrow(/--max-memory: must be a memory size/);
  });
});

/** The tiny model's manifest as the builder writes it (read from the embedded model's build in the CLI tests' cache). */
function tinyManifest(): ModelManifest {
  return JSON.parse(
    readFileSync(join(import.meta.dirname, 'fixtures', 'memory-tiny-model.json'), 'utf8'),
  ) as ModelManifest;
}

/** Runs the CLI, following its peak RSS (VmHWM) until it exits. */
async function svd(args: string[]): Promise<{ code: number | null; stderr: string; stdout: string; peakRss: number }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  let peakRss = 0;
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => (stdout += d));
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakRss = Math.max(peakRss, Number(m[1]) * 1024);
    } catch {
      /* exited */
    }
  }, 20);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearInterval(poll);
  return { code, stderr, stdout, peakRss };
}

describe('svd generate refuses what does not fit, before loading anything', () => {
  it('a 512x512, 48-frame request on the tiny model with 2 GiB: refused, naming the flags and what fits', async () => {
    const r = await svd([
      'generate',
      FIXTURE_IMAGE,
      '--width',
      '512',
      '--height',
      '512',
      '--frames',
      '48',
      '--device',
      'cpu',
      '--max-memory',
      '2G',
      '-o',
      '/tmp/never.mp4',
    ]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /--width: 512x512, 48 frames, decode chunk 48 needs about [\d.]+ GiB of RAM; 2\.00 GiB is available; the largest size that fits is \d+x\d+/,
    );
    expect(r.stderr).toMatch(/--frames: at most \d+ frames fit at this size/);
    expect(r.stderr).toMatch(/--force/);
    expect(r.stderr).not.toMatch(/unexpected|at .*\.ts:/);
    // nothing was loaded: the whole CLI stayed far below what the model would need
    expect(r.peakRss).toBeGreaterThan(0);
    expect(r.peakRss).toBeLessThan(600 * 2 ** 20);
  });

  it('--force runs a request the estimate refuses', async () => {
    const small = [
      'generate',
      FIXTURE_IMAGE,
      '--frames',
      '2',
      '--steps',
      '1',
      '--format',
      'png',
      '--device',
      'cpu',
      '--max-memory',
      '64M',
    ];
    const refused = await svd([...small, '-o', '/tmp/svd-memory-refused']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/needs about [\d.]+ GiB of RAM; 0\.06 GiB is available/);
    const forced = await svd([
      ...small,
      '--force',
      '-o',
      join(process.env.TMPDIR ?? '/tmp', `svd-memory-forced-${process.pid}`),
    ]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/video: 2 frames/);
  });
});

describe('svd serve admits jobs within --max-memory', () => {
  let server: RunningServer;
  const png = fixtureBytes();
  const b64 = Buffer.from(png).toString('base64');
  const dataUri = `data:image/png;base64,${b64}`;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    // 200 MiB: the tiny model's own default request (≈ 320 MiB estimated) does not fit
    server = await startServer({ port: 0, device: 'cpu', maxMemory: 200 * 2 ** 20, defaults: { steps: 1 } });
  });
  afterAll(() => server?.close());

  it('our web API: 422 with issues named by our fields', async () => {
    const res = await post('/api/jobs', { image: b64, width: 512, height: 512, frames: 48 });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { error: { code: string; issues: Array<{ field: string; message: string }> } };
    expect(body.error.code).toBe('exceeds_memory_budget');
    expect(body.error.issues.map((i) => i.field)).toEqual(expect.arrayContaining(['width', 'height', 'frames']));
    expect(body.error.issues[0].message).toMatch(/needs about [\d.]+ GiB of RAM; 0\.20 GiB is available/);
  });

  it('Segmind: 422 {error} naming frames (its svd has no size field)', async () => {
    const res = await post('/v1/svd', { image: b64, frames: 25 });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { error: string };
    expect(body.error).toMatch(/^frames: at most \d+ frames fit|^frames: not even 1 frame fits/m);
    expect(body.error).not.toMatch(/width|decodeChunkSize/);
  });

  it('fal: 422 {detail: [{loc, msg}]}', async () => {
    const res = await post('/fal-ai/svd', { image_url: dataUri });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { detail: Array<{ loc: string[]; msg: string }> };
    expect(body.detail[0].loc[0]).toBe('body');
    expect(body.detail[0].msg).toMatch(/needs about [\d.]+ GiB of RAM/);
  });

  it('OpenAI: 422 {error: {param: size}}', async () => {
    const res = await post('/v1/videos', { prompt: 'x', size: '512x512', input_reference: { image_url: dataUri } });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { error: { param: string; message: string; type: string } };
    expect(body.error.param).toBe('size');
    expect(body.error.message).toMatch(/size: .*needs about [\d.]+ GiB of RAM/);
  });

  it('VoltageGPU: 422 naming num_frames, width and height', async () => {
    const res = await post('/v1/video/generations', {
      model: 'svd',
      prompt: 'x',
      num_frames: 48,
      width: 512,
      height: 512,
      image: dataUri,
    });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { error: { param: string; message: string } };
    expect(body.error.message).toMatch(/^width: 512x512, 48 frames.*\nheight: .*\nnum_frames: /);
  });

  it('the refusal is a typed error the module API can catch', () => {
    const err = new MemoryBudgetError([{ field: 'frames', message: 'at most 3 frames fit at this size' }]);
    expect(err.code).toBe('exceeds_memory_budget');
    expect(err.issues[0].field).toBe('frames');
  });
});

describe('intra-op threads', () => {
  it('counts physical cores, not SMT siblings', async () => {
    const { countPhysicalCores } = await import('../src/runtime/cpu.js');
    const cpu = (n: number, pkg: number, core: number) =>
      `processor\t: ${n}\nphysical id\t: ${pkg}\ncore id\t\t: ${core}\n`;
    // 2 packages × 2 cores × 2 threads
    const text = [
      cpu(0, 0, 0),
      cpu(1, 0, 1),
      cpu(2, 1, 0),
      cpu(3, 1, 1),
      cpu(4, 0, 0),
      cpu(5, 0, 1),
      cpu(6, 1, 0),
      cpu(7, 1, 1),
    ].join('\n');
    expect(countPhysicalCores(text)).toBe(4);
    expect(countPhysicalCores('processor\t: 0\nmodel name\t: some ARM\n')).toBe(0);
  });
});
