/** `svd generate --backend segmind|fal|openai` from the command line, against the mock providers on loopback. */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_MP4, tempDir, writeTinyPng } from './mocks/fixtures.js';
import { mockFal } from './mocks/fal.js';
import { mockOpenAIVideos } from './mocks/openai.js';
import { mockSegmind } from './mocks/segmind.js';
import { startMockServer, type MockServer } from './mocks/server.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'svd.js');
const KEY = 'sk-test-1234567890abcdef';
let server: MockServer;
let dir: string;
let image: string;

function svd(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/API_KEY|FAL_KEY|_BASE_URL|FAL_QUEUE_URL/.test(k)),
  );
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...clean, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

beforeAll(async () => {
  server = await startMockServer();
  dir = tempDir('svd-cli-backends-');
  image = writeTinyPng(dir);
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('svd generate with hosted backends', () => {
  it('segmind: maps the flags, writes the returned video, prints seed and endpoint', async () => {
    const mock = mockSegmind(server, { apiKey: KEY });
    const out = join(dir, 'segmind.mp4');
    const r = await svd(
      [
        'generate',
        image,
        '--backend',
        'segmind',
        '--frames',
        '25',
        '--motion-bucket-id',
        '90',
        '--seed',
        '77',
        '-o',
        out,
      ],
      mock.env,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out)).toEqual(FAKE_MP4);
    expect(r.stdout).toMatch(/seed: 77/);
    expect(r.stdout).toMatch(/backend: segmind/);
    const body = server.calls('POST', '/v1/svd').at(-1)!.json();
    expect(body).toMatchObject({ frames: 25, motion: 90, seed: 77 });
    expect(`${r.stdout}${r.stderr}`).not.toContain(KEY);
  });

  it('segmind: refuses what the provider cannot do before any network call, naming the flag', async () => {
    const mock = mockSegmind(server, { apiKey: KEY });
    const before = server.requests.length;
    const r = await svd(
      ['generate', image, '--backend', 'segmind', '--frames', '16', '-o', join(dir, 'x.mp4')],
      mock.env,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--frames: must be one of 14, 25 on segmind svd/);
    expect(server.requests.length).toBe(before);
  });

  it('fal: queue protocol with progress, result downloaded', async () => {
    const mock = mockFal(server, { apiKey: KEY });
    const out = join(dir, 'fal.mp4');
    const r = await svd(['generate', image, '--backend', 'fal', '-o', out], mock.env);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out)).toEqual(FAKE_MP4);
    expect(r.stdout).toMatch(/seed: 4242/);
  });

  it('openai: /v1/videos create, poll, download', async () => {
    const mock = mockOpenAIVideos(server, { apiKey: KEY });
    const out = join(dir, 'openai.mp4');
    const r = await svd(['generate', image, '--backend', 'openai', '--prompt', 'the cat waves', '-o', out], mock.env);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out)).toEqual(FAKE_MP4);
    expect(mock.created.at(-1)).toMatchObject({ prompt: 'the cat waves' });
  });

  it('a wrong key fails cleanly without printing it and leaves no file', async () => {
    const mock = mockSegmind(server, { apiKey: KEY });
    const out = join(dir, 'denied.mp4');
    const r = await svd(['generate', image, '--backend', 'segmind', '-o', out], {
      ...mock.env,
      SEGMIND_API_KEY: 'sk-wrong-key-987654321',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/401|unauthori[sz]ed|API key/i);
    expect(r.stderr).not.toContain('sk-wrong-key-987654321');
    expect(existsSync(out)).toBe(false);
  });
});
