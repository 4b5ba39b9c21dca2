/**
 * The web page in a real browser (Debian's chromium through playwright-core): enter the key, drop an
 * image, set steps, generate, watch per-step progress arrive, then play the video and download it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext } from 'playwright-core';
import { LocalBackend } from '../src/backends/local.js';
import { startServer, type RunningServer } from '../src/server/index.js';
import { FIXTURE_IMAGE, probeBytes } from './server-helpers.js';
import { launchChromium, type TestBrowser } from './helpers/browser.js';

const KEY = 'browser-test-key';

let backend: LocalBackend;
let server: RunningServer;
let browser: TestBrowser;
let context: BrowserContext;

beforeAll(async () => {
  backend = new LocalBackend();
  await backend.pipeline();
  server = await startServer({ port: 0, apiKey: KEY, backend, defaults: { steps: 2 } });
  browser = await launchChromium('svd-browser-');
  context = browser.context;
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await backend?.close();
});

describe('web page', () => {
  it('uploads an image, shows per-step progress and plays and offers the video', async () => {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    // The form comes from /schema.json: steps has the schema's range.
    await expect.poll(() => page.locator('#f-steps').getAttribute('max')).toBe('100');
    // Empty fields show what they mean: the model's defaults (tiny: 14 frames, 128×64), the server's (steps 2).
    expect(await page.getAttribute('#f-frames', 'placeholder')).toBe('14');
    expect(await page.getAttribute('#f-width', 'placeholder')).toBe('128');
    expect(await page.getAttribute('#f-fps', 'placeholder')).toBe('7');
    expect(await page.getAttribute('#f-steps', 'placeholder')).toBe('2');
    expect(await page.getAttribute('#f-decodeChunkSize', 'placeholder')).toBe('all (14)');
    expect(await page.textContent('#f-resize option:first-child')).toBe('default: stretch');
    // …and the resize choices are not cut: its select is as wide as its longest option
    const resizeFits = await page.evaluate(`(() => {
      const s = document.getElementById('f-resize');
      const probe = document.createElement('select');
      probe.style.width = 'auto';
      probe.append(new Option('maintain_aspect_ratio'));
      document.body.append(probe);
      const fits = s.getBoundingClientRect().width >= probe.getBoundingClientRect().width;
      probe.remove();
      return fits;
    })()`);
    expect(resizeFits).toBe(true);
    expect(await page.locator('#key-row').isVisible()).toBe(true);
    await page.fill('#api-key', KEY);
    await page.setInputFiles('#image-input', FIXTURE_IMAGE);
    await page.fill('#f-steps', '6');
    // Record every step label and progress value the page shows.
    // (Browser-side code is passed as strings: the test project's TypeScript has no DOM types.)
    await page.evaluate(`(() => {
      window.seen = [];
      const record = () => window.seen.push({ step: document.getElementById('step').textContent, progress: document.getElementById('progress').value });
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    })()`);
    await page.click('#generate');
    await page.waitForSelector('#result:not([hidden])', { timeout: 60_000 });

    const seen = (await page.evaluate('window.seen')) as { step: string; progress: number }[];
    const steps = new Set(seen.map((s) => s.step).filter((s) => /^step \d\/6$/.test(s)));
    expect(steps.size).toBeGreaterThanOrEqual(2);
    expect(seen.some((s) => s.progress > 0 && s.progress < 1)).toBe(true);
    expect(await page.textContent('#status')).toBe('Done.');
    expect(await page.textContent('#log')).toContain('denoise step 6/6');

    // The browser can load and play it (duration known), and the download link serves the same MP4.
    const media = await page
      .waitForFunction(
        `(() => {
      const v = document.getElementById('video');
      return v.error ? { error: v.error.code } : v.readyState >= 1 && v.duration > 0 ? { duration: v.duration } : null;
    })()`,
        undefined,
        { timeout: 20_000 },
      )
      .then((h) => h.jsonValue());
    expect(media).toEqual({ duration: expect.any(Number) });
    const href = await page.getAttribute('#download', 'href');
    expect(href).toMatch(/\/files\/[0-9a-f]{32}\/[0-9a-f]{8}\.mp4\?download=1$/);
    const res = await fetch(new URL(href!, server.url));
    expect(res.headers.get('content-disposition')).toMatch(/^attachment/);
    const info = await probeBytes(new Uint8Array(await res.arrayBuffer()));
    expect(info.frames).toBe(14);
    expect(Math.abs(info.duration - (media as { duration: number }).duration)).toBeLessThan(0.5);
    expect(errors).toEqual([]);
  });

  it('shows field errors from the server next to nothing else going wrong', async () => {
    const page = await context.newPage();
    await page.goto(server.url);
    await page.fill('#api-key', 'wrong-key');
    await page.setInputFiles('#image-input', FIXTURE_IMAGE);
    await page.click('#generate');
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.textContent('#error')).toMatch(/invalid API key/);
    await page.fill('#api-key', KEY);
    await page.fill('#f-width', '100');
    await page.fill('#f-height', '64');
    await page.click('#generate');
    await expect.poll(() => page.textContent('#error')).toMatch(/Width \(px\): must be a multiple of 64/);
    expect(await page.textContent('#status')).toBe('Not sent: fix the fields below.'); // not "Uploading…"
  });
});
