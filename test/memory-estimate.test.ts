/**
 * The memory estimate against the peaks measured in bench/RESULTS.md §6 and §8: if a coefficient of
 * src/models/memory.ts changes, the rows it was validated on must still be within ±25 %.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ModelManifest } from '../src/models/manifest.js';
import { estimateMemory, type MemoryProvider, modelMemoryFacts, type ModelMemoryFacts } from '../src/models/memory.js';
import { SVD_XT_FACTS } from './helpers/memoryFacts.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

const TINY = modelMemoryFacts(
  JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'memory-tiny-model.json'), 'utf8')) as ModelManifest,
);

/** The full-size random SVD-XT of §6: float32 CPU graphs, weights converted at build time (builder 5). */
const XT: ModelMemoryFacts = { ...SVD_XT_FACTS, weightStorage: 'convert' };

/** W×H×frames[:chunk] → the request bench-memory --generate makes (2 steps, CFG). */
function request(spec: string) {
  const [size, chunk] = spec.split(':');
  const [width, height, frames] = size.split('x').map(Number);
  return { width, height, frames, decodeChunkSize: chunk ? Number(chunk) : frames, guidance: true };
}

describe('memory estimate against measured peaks', () => {
  it('whole pipeline, tiny model: CPU peak RSS, and on WebGPU (lavapipe) host + device', () => {
    const rows: Array<[MemoryProvider, string, number]> = [
      // §8, CPU EP, 2 threads, today's session defaults (memory patterns off)
      ['cpu', '64x64x4', 208 * MiB],
      ['cpu', '256x256x8', 705 * MiB],
      ['cpu', '256x256x14:4', 533 * MiB],
      ['cpu', '384x384x8:4', 925 * MiB],
      ['cpu', '128x128x25', 567 * MiB],
      ['cpu', '640x384x6', 1.62 * GiB],
      ['cpu', '512x512x14', 3.48 * GiB],
      ['cpu', '512x512x14:2', 1.13 * GiB],
      // §8, WebGPU on Mesa lavapipe (device buffers are host memory): both processes' peaks
      ['webgpu', '64x64x4', 405 * MiB],
      ['webgpu', '128x64x4', 428 * MiB],
      ['webgpu', '128x128x8:4', 464 * MiB],
      ['webgpu', '256x256x4:2', 671 * MiB],
      ['webgpu', '192x128x14:7', 678 * MiB],
    ];
    for (const [provider, spec, measured] of rows) {
      const facts = provider === 'webgpu' ? { ...TINY, attention: 'chunked' as const } : TINY;
      const e = estimateMemory(facts, request(spec), provider);
      const ratio = (e.hostBytes + e.deviceBytes) / measured;
      expect(ratio, `${provider} ${spec}: ${ratio.toFixed(2)}`).toBeGreaterThan(0.75);
      expect(ratio, `${provider} ${spec}: ${ratio.toFixed(2)}`).toBeLessThan(1.25);
    }
  });

  it('full-size SVD-XT UNet alone, one CFG step of 2 frames: runtime + UNet weights + UNet activations', () => {
    // §6: peak RSS (VmHWM) of the process that loaded the UNet alone and ran the step
    const rows: Array<[ModelMemoryFacts['attention'], number, number, number]> = [
      ['mha', 256, 448, 5.92 * GiB],
      ['mha', 384, 640, 6.2 * GiB],
      ['mha', 576, 1024, 6.92 * GiB],
      ['chunked', 256, 448, 6.26 * GiB],
      ['chunked', 384, 640, 6.95 * GiB],
      ['chunked', 576, 1024, 7.2 * GiB],
      ['primitive', 256, 448, 6.26 * GiB],
      ['primitive', 384, 640, 8.12 * GiB],
    ];
    for (const [attention, height, width, measured] of rows) {
      const { parts } = estimateMemory(
        { ...XT, attention },
        { width, height, frames: 2, decodeChunkSize: 1, guidance: true },
        'cpu',
      );
      const ratio = (parts.runtime + XT.computeWeightBytes.unet + parts.unet) / measured;
      expect(ratio, `${attention} ${width}x${height}: ${ratio.toFixed(2)}`).toBeGreaterThan(0.75);
      expect(ratio, `${attention} ${width}x${height}: ${ratio.toFixed(2)}`).toBeLessThan(1.25);
    }
  });

  it('full-size SVD-XT, whole pipeline at 64×64×2 (§7): every weight and the runtime', () => {
    const e = estimateMemory(XT, request('64x64x2'), 'cpu');
    const ratio = e.hostBytes / (8.57 * GiB);
    expect(ratio).toBeGreaterThan(0.75);
    expect(ratio).toBeLessThan(1.25);
  });

  it('WebGPU keeps the weights and activations on the device, the runtime and the frames on the host', () => {
    const req = request('1024x576x14:7');
    const gpu = estimateMemory(XT, req, 'webgpu');
    const cpu = estimateMemory(XT, req, 'cpu');
    const weights = Object.values(XT.computeWeightBytes).reduce((a, b) => a + b, 0);
    expect(gpu.deviceBytes).toBeGreaterThan(weights + cpu.parts.unet);
    expect(gpu.hostBytes).toBeLessThan(gpu.deviceBytes);
    expect(gpu.hostBytes).toBeGreaterThan(cpu.parts.runtime + cpu.parts.frames);
  });
});
