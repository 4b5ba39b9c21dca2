/**
 * The motion controls through every front end on the embedded tiny model: `svd generate` flags, fal's
 * `mask_image_url`, our own API (JSON and multipart) and the web page (mask upload, clips, loop).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backends/local.js';
import { startServer, type RunningServer } from '../src/server/index.js';
import { decodeRequest, encodeJobData } from '../src/server/queue/wire.js';
import { probeVideo } from '../src/video/index.js';
import { REFERENCE_IMAGE } from './helpers/reference.js';
import { buildTinyModel } from './helpers/tinyModel.js';
import { fixtureBytes, probeBytes } from './server-helpers.js';
import { launchChromium, type TestBrowser } from './helpers/browser.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'svd.js');
const dataUri = (bytes: Uint8Array) => `data:image/png;base64,${Buffer.from(bytes).toString('base64')}`;
let cacheDir: string;
let out: string;
let maskPath: string;
let mask: Uint8Array;
let backend: LocalBackend;
let server: RunningServer;

beforeAll(async () => {
  cacheDir = (await buildTinyModel()).cacheDir;
  out = mkdtempSync(join(tmpdir(), 'svd-motion-fronts-'));
  const raw = Buffer.alloc(40 * 20);
  for (let y = 0; y < 20; y++) raw.fill(255, y * 40, y * 40 + 20); // left half still
  mask = Uint8Array.from(
    await sharp(raw, { raw: { width: 40, height: 20, channels: 1 } })
      .png()
      .toBuffer(),
  );
  maskPath = join(out, 'mask.png');
  writeFileSync(maskPath, mask);
  backend = new LocalBackend();
  await backend.pipeline();
  server = await startServer({ port: 0, backend, defaults: { steps: 2 } });
});
afterAll(async () => {
  await server?.close();
  await backend?.close();
  rmSync(cacheDir, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

function svd(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, SVD_CACHE_DIR: cacheDir },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function waitJob(id: string): Promise<Record<string, any>> {
  for (;;) {
    const job = (await (await fetch(`${server.url}/api/jobs/${id}`)).json()) as Record<string, any>;
    if (!['queued', 'running'].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('svd generate', () => {
  it('--mask, --clips, --overlap and --loop make the chained video and report the clip seeds', async () => {
    const target = join(out, 'cli.mp4');
    const r = svd([
      'generate',
      REFERENCE_IMAGE,
      '--mask',
      maskPath,
      '--frames',
      '4',
      '--steps',
      '2',
      '--clips',
      '2',
      '--overlap',
      '1',
      '--loop',
      '--seed',
      '9',
      '-o',
      target,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({
      frames: 7,
      metadata: { clips: 2, overlap: 1, clipSeeds: [9, 2654435778], loop: true },
    });
    expect(json.metadata.maskCoverage).toBeCloseTo(0.5, 1);
    expect(await probeVideo(target)).toMatchObject({ frames: 7 });
  });

  it('names --mask for a bad mask and --duration next to --clips, before any model work', () => {
    const bad = svd(['generate', REFERENCE_IMAGE, '--mask', join(out, 'nope.png')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--mask: mask image .*nope\.png/);
    const both = svd(['generate', REFERENCE_IMAGE, '--clips', '2', '--duration', '3']);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/--duration: give clips or duration, not both/);
  });
});

describe('svd serve', () => {
  it('fal-ai/svd takes mask_image_url; a mask that is not an image is a 422 naming it', async () => {
    const image = dataUri(fixtureBytes());
    const res = await fetch(`${server.url}/run/fal-ai/svd`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image_url: image, mask_image_url: dataUri(mask), seed: 3 }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as { video: { url: string } };
    expect((await probeBytes(new Uint8Array(await (await fetch(body.video.url)).arrayBuffer()))).frames).toBe(14);
    const bad = await fetch(`${server.url}/run/fal-ai/svd`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image_url: image, mask_image_url: 'data:text/plain;base64,aGVsbG8gd29ybGQ=' }),
    });
    expect(bad.status).toBe(422);
    expect(JSON.stringify(await bad.json())).toMatch(/mask_image_url/);
  });

  it('our API takes mask (multipart), clips, overlap, duration and loop; /schema.json offers them', async () => {
    const schema = (await (await fetch(`${server.url}/schema.json`)).json()) as {
      request: { properties: Record<string, { type?: string }> };
    };
    expect(Object.keys(schema.request.properties)).toEqual(
      expect.arrayContaining(['clips', 'duration', 'overlap', 'loop']),
    );
    expect(schema.request.properties.loop.type).toBe('boolean');
    const form = new FormData();
    form.append('image', new Blob([fixtureBytes()], { type: 'image/png' }), 'in.png');
    form.append('mask', new Blob([mask], { type: 'image/png' }), 'mask.png');
    for (const [k, v] of Object.entries({ frames: '4', clips: '2', overlap: '1', loop: 'true' })) form.append(k, v);
    const created = (await (await fetch(`${server.url}/api/jobs`, { method: 'POST', body: form })).json()) as {
      id: string;
    };
    const job = await waitJob(created.id);
    expect(job.status, JSON.stringify(job.error)).toBe('completed');
    expect((await probeBytes(new Uint8Array(await (await fetch(job.video.url)).arrayBuffer()))).frames).toBe(7);
    const json = await fetch(`${server.url}/api/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: dataUri(fixtureBytes()), frames: 4, duration: 1, fps: 6 }),
    });
    const byDuration = await waitJob(((await json.json()) as { id: string }).id);
    expect((await probeBytes(new Uint8Array(await (await fetch(byDuration.video.url)).arrayBuffer()))).frames).toBe(6);
    const bad = await fetch(`${server.url}/api/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: dataUri(fixtureBytes()), mask: 'bm90IGFuIGltYWdlIGF0IGFsbA==' }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { issues: { field: string }[] } }).error.issues[0].field).toBe('mask');
  });
});

describe('Redis queue wire', () => {
  it('carries the mask as base64 next to the image, and the chaining fields as they are', () => {
    const request = {
      image: Uint8Array.from(fixtureBytes()),
      mask: Uint8Array.from(mask),
      clips: 2,
      overlap: 1,
      loop: true,
      output: 'x.mp4',
    };
    const data = JSON.parse(JSON.stringify(encodeJobData(request, {}, 60)));
    expect(data.request.maskBase64).toBe(Buffer.from(mask).toString('base64'));
    const back = decodeRequest(data);
    expect(back).toMatchObject({ clips: 2, overlap: 1, loop: true });
    expect(Buffer.compare(Buffer.from(back.mask as Uint8Array), Buffer.from(mask))).toBe(0);
    expect('output' in back).toBe(false);
  });
});

describe('web page', () => {
  let browser: TestBrowser;
  let context: BrowserContext;
  beforeAll(async () => {
    browser = await launchChromium('svd-browser-motion-');
    context = browser.context;
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('uploads a mask, chains two clips with a loop and shows the clip in the progress line', async () => {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    await expect.poll(() => page.locator('#f-clips').getAttribute('max')).toBe('32');
    await page.setInputFiles('#image-input', REFERENCE_IMAGE);
    await page.setInputFiles('#mask-input', maskPath);
    await page.fill('#f-frames', '4');
    await page.fill('#f-clips', '2');
    await page.fill('#f-overlap', '1');
    await page.check('#f-loop');
    await page.evaluate(`(() => {
      window.steps = [];
      new MutationObserver(() => window.steps.push(document.getElementById('step').textContent))
        .observe(document.getElementById('step'), { childList: true, characterData: true, subtree: true });
    })()`);
    await page.click('#generate');
    await page.waitForSelector('#result:not([hidden])', { timeout: 60_000 });
    const steps = (await page.evaluate('window.steps')) as string[];
    expect(steps).toContain('clip 2/2, step 2/2');
    const href = await page.getAttribute('#download', 'href');
    const info = await probeBytes(new Uint8Array(await (await fetch(new URL(href!, server.url))).arrayBuffer()));
    expect(info.frames).toBe(7);
    expect(errors).toEqual([]);
  });
});
