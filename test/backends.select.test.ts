import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createBackend, createSelectedBackend, selectBackend } from '../src/backends/index.js';
import { remoteOptionsFromFlags } from '../src/cli/remoteFlags.js';
import { InvalidRequestError, ProviderError } from '../src/errors.js';
import { startMockServer, type MockServer } from './mocks/server.js';
import { mockSegmind } from './mocks/segmind.js';
import { mockFal } from './mocks/fal.js';
import { FAKE_MP4, tempDir, writeTinyPng } from './mocks/fixtures.js';
import { rejectionOf } from './mocks/secrets.js';

describe('selectBackend', () => {
  it('auto prefers local when a GPU and the model are available', async () => {
    const s = await selectBackend({ backend: 'auto', env: { SEGMIND_API_KEY: 'k' }, localAvailable: true });
    expect(s.name).toBe('local');
    expect(s.reason).toContain('GPU');
  });

  it('auto takes the first provider with a key, in the order segmind, fal, voltage, openai', async () => {
    const env = { OPENAI_API_KEY: 'o', FAL_KEY: 'f', VOLTAGE_API_KEY: 'v' };
    expect(await selectBackend({ env, localAvailable: false })).toEqual({
      name: 'fal',
      reason: 'auto: no local GPU with the model; FAL_KEY is set',
    });
    expect(
      (await selectBackend({ env: { ...env, SEGMIND_API_KEY: 's' }, localAvailable: async () => false })).name,
    ).toBe('segmind');
    expect((await selectBackend({ env: { OPENAI_API_KEY: 'o' } })).name).toBe('openai');
    expect((await selectBackend({ env: { FAL_KEY_ID: 'id', FAL_KEY_SECRET: 'secret' } })).name).toBe('fal');
  });

  it('auto with nothing else still runs locally, and says why', async () => {
    const s = await selectBackend({ env: {}, localAvailable: false });
    expect(s.name).toBe('local');
    expect(s.reason).toContain('SEGMIND_API_KEY');
  });

  it('an explicit choice is kept; unknown names and auto with an explicit key are refused', async () => {
    expect(await selectBackend({ backend: 'voltage', env: {} })).toEqual({
      name: 'voltage',
      reason: 'chosen explicitly',
    });
    const unknown = await rejectionOf(selectBackend({ backend: 'replicate' }));
    expect(unknown).toBeInstanceOf(InvalidRequestError);
    expect(unknown.message).toContain('auto, local, segmind, fal, voltage, openai');
    const keyed = await rejectionOf(selectBackend({ backend: 'auto', apiKey: 'x', env: {} }));
    expect(keyed.issues[0].field).toBe('backend');
  });
});

describe('createBackend / createSelectedBackend', () => {
  let server: MockServer;
  let dir: string;
  beforeEach(async () => {
    server = await startMockServer();
    dir = tempDir();
  });
  afterEach(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a remote backend without a key fails at creation, naming the variable', () => {
    for (const [name, variable] of [
      ['segmind', 'SEGMIND_API_KEY'],
      ['fal', 'FAL_KEY'],
      ['voltage', 'VOLTAGE_API_KEY'],
      ['openai', 'OPENAI_API_KEY'],
    ] as const) {
      let err: any;
      try {
        createBackend(name, { env: {} });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProviderError);
      expect(err.message).toContain(variable);
    }
  });

  it('auto lands on the provider with a key, and the result says which and why', async () => {
    const fal = mockFal(server, { apiKey: 'fal-k' });
    const image = writeTinyPng(dir);
    const { backend, selection } = await createSelectedBackend({
      backend: 'auto',
      env: fal.env,
      localAvailable: false,
      pollIntervalMs: 2,
    });
    expect(selection.name).toBe('fal');
    const out = join(dir, 'o.mp4');
    const result = await backend.generate({ image, output: out });
    expect(result.backend).toBe('fal');
    expect(result.reason).toBe('auto: no local GPU with the model; FAL_KEY is set');
    expect(readFileSync(out)).toEqual(FAKE_MP4);
  });

  it('an explicit baseUrl and apiKey beat the environment', async () => {
    const segmind = mockSegmind(server, { apiKey: 'explicit-key-1' });
    const image = writeTinyPng(dir);
    const backend = createBackend('segmind', {
      apiKey: 'explicit-key-1',
      baseUrl: `${segmind.baseUrl}/`,
      env: { SEGMIND_API_KEY: 'env-key', SEGMIND_BASE_URL: 'http://127.0.0.1:9/v1' },
    });
    await backend.generate({ image, output: join(dir, 'e.mp4') });
    expect(server.calls('POST', '/v1/svd')[0].headers['x-api-key']).toBe('explicit-key-1');
  });

  it("options.remote and a call's remote merge, the call winning", async () => {
    const segmind = mockSegmind(server, { apiKey: 'k-123456' });
    const image = writeTinyPng(dir);
    const backend = createBackend('segmind', { env: segmind.env, remote: { model: 'svd', quality: '360p' } });
    await backend.generate(
      { image, output: join(dir, 'm.mp4'), camera: 'zoom-in', motionSpeed: 4 },
      { remote: { model: 'motionctrl-svd' } },
    );
    expect(server.calls('POST', '/v1/motionctrl-svd')[0].json()).toMatchObject({ motion: 'Zoom In', motion_speed: 4 });
  });
});

describe('remoteOptionsFromFlags', () => {
  it('maps CLI flags to a backend name, options and validated remote fields', () => {
    const parsed = remoteOptionsFromFlags({
      backend: 'segmind',
      apiKey: 'k',
      baseUrl: 'http://x',
      remoteModel: 'motionctrl-svd',
      timeout: '30',
      prompt: 'p',
      quality: '720p',
    });
    expect(parsed).toEqual({
      backend: 'segmind',
      options: {
        apiKey: 'k',
        baseUrl: 'http://x',
        deadlineMs: 30_000,
        remote: { model: 'motionctrl-svd', prompt: 'p', quality: '720p' },
      },
    });
    expect(remoteOptionsFromFlags({})).toEqual({ options: {} });
  });

  it('names the flag the user typed in errors', () => {
    let err: any;
    try {
      remoteOptionsFromFlags({ style: 'noir', motionMode: 'turbo', quality: '4k' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err.issues.map((i: any) => i.field).sort()).toEqual(['--motion-mode', '--quality', '--style']);
    expect(err.message).toContain('360p, 540p, 720p, 1080p');
  });
});
