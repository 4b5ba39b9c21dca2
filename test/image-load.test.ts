import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, ImageLoadError } from '../src/errors.js';
import { loadImage, prepareImage, toVaeInput } from '../src/image/index.js';
import { maxAbsDiff } from '../src/tensor/compare.js';
import { REFERENCE_IMAGE, ref } from './helpers/reference.js';
import { readNpy } from '../src/tensor/npy.js';
import { REFERENCE_DIR } from './helpers/reference.js';

const dir = mkdtempSync(join(tmpdir(), 'svd-image-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** w×h RGB image: left half red, right half blue. */
function halves(w: number, h: number): Buffer {
  const buf = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) buf.set(x < w / 2 ? [255, 0, 0] : [0, 0, 255], (y * w + x) * 3);
  return buf;
}
const px = (img: { rgb: Uint8Array; width: number }, x: number, y: number) =>
  Array.from(img.rgb.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

describe('loadImage: the reference image and the VAE input', () => {
  it('decodes the reference PNG to exactly the pixels diffusers saw', async () => {
    const img = await loadImage(REFERENCE_IMAGE);
    expect([img.width, img.height]).toEqual([128, 64]);
    const want = readNpy(join(REFERENCE_DIR, 'out', 'input_image_uint8.npy'));
    expect(want.shape).toEqual([64, 128, 3]);
    expect(Buffer.compare(Buffer.from(img.rgb), Buffer.from(want.data as Uint8Array))).toBe(0);
  });

  it('prepareImage(stretch) at the image size gives vae_image.npy exactly, and CLIP sees the same image', async () => {
    const img = await loadImage(REFERENCE_IMAGE);
    const p = await prepareImage(img, { width: 128, height: 64, resize: 'stretch' });
    expect([p.width, p.height]).toEqual([128, 64]);
    expect(p.vaeImage).toBe(img); // no resampling when the size already matches (PIL behaviour)
    expect(p.clipSource).toBe(img);
    const want = ref('vae_image');
    expect(want.shape).toEqual([1, 3, 64, 128]);
    expect(maxAbsDiff(p.vaeInput, want.data)).toBe(0);
  });

  it('toVaeInput maps 0 → −1, 255 → 1 and lays out NCHW', () => {
    const out = toVaeInput(Uint8Array.of(0, 128, 255, 255, 255, 255), 2, 1);
    expect(Array.from(out)).toEqual([-1, 1, Math.fround(Math.fround(128 / 255) * 2) - 1, 1, 1, 1]);
    expect(() => toVaeInput(new Uint8Array(5), 2, 1)).toThrow(/2×1×3 = 6 expected/);
  });
});

describe('loadImage: formats and sources', () => {
  it('applies EXIF orientation 6 (rotate 90° clockwise)', async () => {
    const path = join(dir, 'rot6.jpg');
    await sharp(halves(40, 20), { raw: { width: 40, height: 20, channels: 3 } })
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toFile(path);
    expect((await sharp(path).metadata()).orientation).toBe(6);
    const img = await loadImage(path);
    expect([img.width, img.height]).toEqual([20, 40]);
    // the left (red) half of the stored image is on top after rotating clockwise
    const [r1, , b1] = px(img, 10, 5);
    const [r2, , b2] = px(img, 10, 35);
    expect(r1).toBeGreaterThan(200);
    expect(b1).toBeLessThan(50);
    expect(b2).toBeGreaterThan(200);
    expect(r2).toBeLessThan(50);
  });

  it('drops alpha without compositing (PIL convert("RGB")) and expands greyscale to RGB', async () => {
    const rgba = Buffer.from([200, 100, 50, 0, 10, 20, 30, 255, 1, 2, 3, 128, 0, 0, 0, 0]);
    const pngPath = join(dir, 'rgba.png');
    await sharp(rgba, { raw: { width: 2, height: 2, channels: 4 } })
      .png()
      .toFile(pngPath);
    const img = await loadImage(pngPath);
    expect(img.rgb.length).toBe(2 * 2 * 3);
    expect(Array.from(img.rgb)).toEqual([200, 100, 50, 10, 20, 30, 1, 2, 3, 0, 0, 0]);

    const grey = await sharp(Buffer.from([0, 77, 200, 255]), { raw: { width: 2, height: 2, channels: 1 } })
      .png()
      .toBuffer();
    const g = await loadImage(new Uint8Array(grey));
    expect(Array.from(g.rgb)).toEqual([0, 0, 0, 77, 77, 77, 200, 200, 200, 255, 255, 255]);
  });

  it('reads WebP, encoded bytes, a file: URL, a data: URI and bare base64 (standard and URL-safe)', async () => {
    const png = readFileSync(REFERENCE_IMAGE);
    const want = await loadImage(REFERENCE_IMAGE);
    const webp = await sharp(png).webp({ lossless: true }).toBuffer();
    const fromWebp = await loadImage(new Uint8Array(webp));
    expect(Buffer.compare(Buffer.from(fromWebp.rgb), Buffer.from(want.rgb))).toBe(0);
    for (const source of [
      new Uint8Array(png),
      pathToFileURL(REFERENCE_IMAGE).href,
      `data:image/png;base64,${png.toString('base64')}`,
      png.toString('base64'),
      png.toString('base64url'),
      png.toString('base64').replace(/(.{76})/g, '$1\n'),
    ]) {
      const img = await loadImage(source);
      expect([img.width, img.height]).toEqual([128, 64]);
      expect(Buffer.compare(Buffer.from(img.rgb), Buffer.from(want.rgb))).toBe(0);
    }
  });

  it('refuses other formats, broken files, missing files and oversize input with ImageLoadError naming the source', async () => {
    const gif = join(dir, 'a.gif');
    writeFileSync(gif, Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'));
    await expect(loadImage(gif)).rejects.toThrow(ImageLoadError);
    await expect(loadImage(gif)).rejects.toThrow(/a\.gif: is a GIF; allowed formats: PNG, JPEG, WebP/);

    const txt = join(dir, 'notes.png');
    writeFileSync(txt, 'hello, this is not an image');
    await expect(loadImage(txt)).rejects.toThrow(/notes\.png: is not a recognised image; allowed formats/);

    const truncated = join(dir, 'truncated.png');
    writeFileSync(truncated, readFileSync(REFERENCE_IMAGE).subarray(0, 200));
    await expect(loadImage(truncated)).rejects.toThrow(/truncated\.png: cannot be decoded as PNG/);

    await expect(loadImage(join(dir, 'missing.png'))).rejects.toThrow(
      /missing\.png: no such file, and not a URL, data: URI or base64/,
    );
    await expect(loadImage(dir)).rejects.toThrow(/is not a regular file/);
    await expect(loadImage('data:image/png;base64,@@@')).rejects.toThrow(
      /data URI \(image\/png;base64, \d+ chars\): has invalid base64/,
    );
    await expect(loadImage('ftp://example.com/a.png?token=SECRET')).rejects.toThrow(
      /^image ftp:\/\/example\.com\/a\.png: unsupported URL scheme/,
    );
    await expect(loadImage(REFERENCE_IMAGE, { maxBytes: 100 })).rejects.toThrow(/is \d+ bytes; the limit is 100 bytes/);
    await expect(loadImage(REFERENCE_IMAGE, { maxPixels: 1000 })).rejects.toThrow(
      /has more pixels than the limit of 1000/,
    );
    // a long base64 string that is not an image is not echoed back in full
    const junk = Buffer.alloc(3000, 7).toString('base64');
    const err = await loadImage(junk).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ImageLoadError);
    expect((err as Error).message.length).toBeLessThan(200);
  });

  it('an already-aborted signal gives AbortError', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(loadImage(REFERENCE_IMAGE, { signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
  });
});

describe('loadImage over http (local server on 127.0.0.1)', () => {
  let server: Server;
  let base = '';
  const png = readFileSync(REFERENCE_IMAGE);
  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = req.url ?? '';
      if (url.startsWith('/ok.png')) {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
        res.end(png);
      } else if (url === '/big-declared') {
        res.writeHead(200, { 'content-length': 10_000_000 });
        res.end();
      } else if (url === '/big-chunked') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' }); // no content-length: chunked
        const chunk = Buffer.alloc(64 * 1024, 1);
        let sent = 0;
        const push = () => {
          while (sent < 40 && res.write(chunk)) sent++;
          if (sent < 40) res.once('drain', push);
          else res.end();
        };
        push();
      } else if (url === '/slow') {
        res.writeHead(200, { 'content-type': 'image/png' });
        res.write(png.subarray(0, 10));
        setTimeout(() => res.end(png.subarray(10)), 3000).unref();
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('downloads an image', async () => {
    const img = await loadImage(`${base}/ok.png?sig=abc`);
    const want = await loadImage(REFERENCE_IMAGE);
    expect([img.width, img.height]).toEqual([128, 64]);
    expect(Buffer.compare(Buffer.from(img.rgb), Buffer.from(want.rgb))).toBe(0);
  });

  it('a 404 fails clearly, and the query string is not echoed', async () => {
    const err = await loadImage(`${base}/nope.png?token=SECRET`).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ImageLoadError);
    expect((err as Error).message).toBe(`image ${base}/nope.png: download failed: HTTP 404 Not Found`);
  });

  it('an oversized body fails, declared or streamed', async () => {
    await expect(loadImage(`${base}/big-declared`, { maxBytes: 1_000_000 })).rejects.toThrow(
      /is 10000000 bytes; the limit is 1000000 bytes/,
    );
    await expect(loadImage(`${base}/big-chunked`, { maxBytes: 1_000_000 })).rejects.toThrow(
      /larger than the limit of 1000000 bytes/,
    );
  });

  it('a slow server hits the time limit; a caller abort gives AbortError', async () => {
    await expect(loadImage(`${base}/slow`, { timeoutMs: 300 })).rejects.toThrow(/download timed out after 300 ms/);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await expect(loadImage(`${base}/slow`, { signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
  });

  it('a refused connection names the URL', async () => {
    const port = (server.address() as AddressInfo).port;
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(deadPort).not.toBe(port);
    await expect(loadImage(`http://127.0.0.1:${deadPort}/a.png`)).rejects.toThrow(/download failed \(ECONNREFUSED\)/);
  });
});
