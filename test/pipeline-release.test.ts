/** `releaseBetweenStages`: each session goes once a generation is done with it, reopens for the next, same frames. */
import { rmSync } from 'node:fs';
import { basename } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPipeline } from '../src/pipeline/pipeline.js';
import { InProcessOrtHost, type HostedSession, type OrtHost, type SessionSpec } from '../src/runtime/ortHost.js';
import { REFERENCE_IMAGE } from './helpers/reference.js';
import { buildTinyModel } from './helpers/tinyModel.js';

/** An in-process host that logs "open X", "run X", "release X" in order. */
class LoggingHost implements OrtHost {
  readonly events: string[] = [];
  private readonly inner = new InProcessOrtHost();

  async createSession(spec: SessionSpec): Promise<HostedSession> {
    const graph = basename(spec.path, '.onnx');
    const s = await this.inner.createSession(spec);
    this.events.push(`open ${graph}`);
    return {
      ...s,
      run: (feeds) => {
        this.events.push(`run ${graph}`);
        return s.run(feeds);
      },
      release: async () => {
        this.events.push(`release ${graph}`);
        await s.release();
      },
    };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

let modelDir: string;
let cacheDir: string;
const request = { image: REFERENCE_IMAGE, frames: 4, steps: 2, seed: 5 } as const;

beforeAll(async () => {
  ({ modelDir, cacheDir } = await buildTinyModel());
});
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

describe('releaseBetweenStages', () => {
  it('releases the encoders before the UNet runs and the UNet before the decoder; reopens; same frames', async () => {
    const host = new LoggingHost();
    const released = await createPipeline({ modelDir, device: 'cpu', host, releaseBetweenStages: true, log: () => {} });
    const resident = await createPipeline({ modelDir, device: 'cpu', inWorker: false, log: () => {} });
    try {
      const a = await released.generate(request, { skipVideo: true });
      const first = [...host.events];
      const at = (e: string) => first.indexOf(e);
      expect(at('release image_encoder')).toBeGreaterThan(at('run image_encoder'));
      expect(at('release vae_encoder')).toBeGreaterThan(at('run vae_encoder'));
      expect(at('release image_encoder')).toBeLessThan(at('run unet'));
      expect(at('release vae_encoder')).toBeLessThan(at('run unet'));
      expect(at('release unet')).toBeGreaterThan(first.lastIndexOf('run unet'));
      expect(at('release unet')).toBeLessThan(at('run vae_decoder'));
      expect(first.at(-1)).toBe('release vae_decoder');
      expect(first.filter((e) => e.startsWith('open'))).toHaveLength(4);

      // the next generation opens each graph again, and the results do not depend on it
      host.events.length = 0;
      const b = await released.generate(request, { skipVideo: true });
      expect(host.events.filter((e) => e.startsWith('open')).sort()).toEqual([
        'open image_encoder',
        'open unet',
        'open vae_decoder',
        'open vae_encoder',
      ]);
      const c = await resident.generate(request, { skipVideo: true });
      expect(b.frames).toEqual(a.frames);
      expect(c.frames).toEqual(a.frames);
    } finally {
      await released.close();
      await resident.close();
      await host.close();
    }
    // closing after a release does not release twice
    expect(host.events.filter((e) => e === 'release unet')).toHaveLength(1);
  });
});
