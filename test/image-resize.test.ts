import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { coverCrop, fitAspect, prepareImage, resizeForVae, targetSize, type RgbImage } from '../src/image/index.js';

/** w×h image: a green centre square region with red left/right margins and blue top/bottom margins (by band). */
function bands(w: number, h: number, band: { x: number; y: number }): RgbImage {
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const c = x < band.x || x >= w - band.x ? [255, 0, 0] : y < band.y || y >= h - band.y ? [0, 0, 255] : [0, 255, 0];
      rgb.set(c, (y * w + x) * 3);
    }
  }
  return { rgb, width: w, height: h };
}
const px = (img: RgbImage, x: number, y: number) =>
  Array.from(img.rgb.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

describe('targetSize (pure)', () => {
  it('stretch: the requested size, floored to a multiple of 8, never a crop', () => {
    expect(targetSize(333, 777, { width: 1024, height: 576, resize: 'stretch' })).toEqual({ width: 1024, height: 576 });
    expect(targetSize(10, 10, { width: 1030, height: 580, resize: 'stretch' })).toEqual({ width: 1024, height: 576 });
  });

  it('crop_to_16_9: the requested size and a centred crop to its aspect ratio', () => {
    // 4:3 → 16:9: keep the full width, crop rows equally top and bottom
    expect(targetSize(1600, 1200, { width: 1024, height: 576, resize: 'crop_to_16_9' })).toEqual({
      width: 1024,
      height: 576,
      crop: { left: 0, top: 150, width: 1600, height: 900 },
    });
    // 21:9-ish → 16:9: crop columns
    expect(targetSize(2100, 900, { width: 1024, height: 576, resize: 'crop_to_16_9' })).toEqual({
      width: 1024,
      height: 576,
      crop: { left: 250, top: 0, width: 1600, height: 900 },
    });
    // already 16:9: no crop
    expect(targetSize(1920, 1080, { width: 1024, height: 576, resize: 'crop_to_16_9' })).toEqual({
      width: 1024,
      height: 576,
    });
  });

  it('maintain_aspect_ratio: sides multiples of 64 within the pixel budget, aspect as close as possible', () => {
    const budget = 1024 * 576;
    expect(targetSize(1920, 1080, { width: 1024, height: 576, resize: 'maintain_aspect_ratio' })).toEqual({
      width: 1024,
      height: 576,
    });
    expect(targetSize(1000, 1000, { width: 1024, height: 576, resize: 'maintain_aspect_ratio' })).toEqual({
      width: 768,
      height: 768,
    });
    const portrait = targetSize(1080, 1920, { width: 1024, height: 576, resize: 'maintain_aspect_ratio' });
    expect(portrait).toEqual({ width: 576, height: 1024 });
    for (const [w, h] of [
      [4000, 3000],
      [3000, 4000],
      [1280, 720],
      [500, 2000],
      [5000, 500],
      [64, 64],
    ]) {
      const t = targetSize(w, h, { width: 1024, height: 576, resize: 'maintain_aspect_ratio' });
      expect(t.width % 64).toBe(0);
      expect(t.height % 64).toBe(0);
      expect(t.width * t.height).toBeLessThanOrEqual(budget);
      // uses most of the budget unless a side hit the 2048 cap (5000×500)
      if (t.width < 2048 && t.height < 2048) expect(t.width * t.height).toBeGreaterThan(budget * 0.75);
      // the crop (if any) has the target's aspect ratio and stays inside the image
      const c = t.crop ?? { left: 0, top: 0, width: w, height: h };
      expect(Math.abs(c.width / c.height - t.width / t.height)).toBeLessThan(0.01 * (t.width / t.height));
      expect(c.left + c.width).toBeLessThanOrEqual(w);
      expect(c.top + c.height).toBeLessThanOrEqual(h);
    }
  });

  it('fitAspect prefers the closest aspect, then the larger area; sides clamp to 64…2048', () => {
    expect(fitAspect(4 / 3, 1024 * 576)).toEqual({ width: 832, height: 640 });
    expect(fitAspect(100, 1024 * 576)).toEqual({ width: 2048, height: 64 });
    expect(fitAspect(1, 100)).toEqual({ width: 64, height: 64 });
  });

  it('coverCrop is centred and undefined when the aspect already matches', () => {
    expect(coverCrop(100, 50, 200, 100)).toBeUndefined();
    expect(coverCrop(101, 50, 1, 1)).toEqual({ left: 25, top: 0, width: 50, height: 50 });
    expect(coverCrop(50, 101, 1, 1)).toEqual({ left: 0, top: 25, width: 50, height: 50 });
  });
});

describe('resizeForVae (sharp lanczos3)', () => {
  it('stretch returns the same image when the size matches, and resizes otherwise', async () => {
    const img = bands(64, 64, { x: 8, y: 8 });
    expect(await resizeForVae(img, { width: 64, height: 64, resize: 'stretch' })).toBe(img);
    const out = await resizeForVae(img, { width: 128, height: 64, resize: 'stretch' });
    expect([out.width, out.height, out.rgb.length]).toEqual([128, 64, 128 * 64 * 3]);
    // stretched, not cropped: the red margins are still at both sides, the blue ones top and bottom
    expect(px(out, 2, 32)).toEqual([255, 0, 0]);
    expect(px(out, 125, 32)).toEqual([255, 0, 0]);
    expect(px(out, 64, 1)).toEqual([0, 0, 255]);
    expect(px(out, 64, 32)).toEqual([0, 255, 0]);
  });

  it('crop_to_16_9 removes the top and bottom of a 4:3 image before resizing', async () => {
    // 160×120 with 15-row blue bands top and bottom: exactly what a 16:9 crop (160×90) removes
    const img = bands(160, 120, { x: 0, y: 15 });
    const out = await resizeForVae(img, { width: 128, height: 64, resize: 'crop_to_16_9' });
    expect([out.width, out.height]).toEqual([128, 64]);
    let blue = 0;
    for (let i = 0; i < out.rgb.length; i += 3) if (out.rgb[i + 2] > 128) blue++;
    expect(blue).toBe(0);
    // and stretch on the same image keeps the bands
    const stretched = await resizeForVae(img, { width: 128, height: 64, resize: 'stretch' });
    expect(px(stretched, 64, 2)).toEqual([0, 0, 255]);
  });

  it('maintain_aspect_ratio keeps a square image square', async () => {
    const img = bands(300, 300, { x: 30, y: 30 });
    const out = await resizeForVae(img, { width: 1024, height: 576, resize: 'maintain_aspect_ratio' });
    expect([out.width, out.height]).toEqual([768, 768]);
    expect(px(out, 384, 384)).toEqual([0, 255, 0]);
    expect(px(out, 10, 384)).toEqual([255, 0, 0]);
  });

  it('prepareImage: stretch gives CLIP the original, crop policies give CLIP the prepared image', async () => {
    const img = bands(160, 120, { x: 0, y: 15 });
    const s = await prepareImage(img, { width: 128, height: 64, resize: 'stretch' });
    expect(s.clipSource).toBe(img);
    expect(s.vaeInput.length).toBe(3 * 64 * 128);
    const c = await prepareImage(img, { width: 128, height: 64, resize: 'crop_to_16_9' });
    expect(c.clipSource).toBe(c.vaeImage);
    expect([c.width, c.height]).toEqual([128, 64]);
  });

  it('the lanczos3 downscale of a photo-like image stays close to the original (sanity)', async () => {
    const w = 256;
    const h = 128;
    const rgb = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) rgb.set([i % w, (i / w) | 0, 128], i * 3);
    const out = await resizeForVae({ rgb, width: w, height: h }, { width: 128, height: 64, resize: 'stretch' });
    const ref = await sharp(Buffer.from(rgb), { raw: { width: w, height: h, channels: 3 } })
      .resize(128, 64, { fit: 'fill', kernel: 'lanczos3' })
      .raw()
      .toBuffer();
    expect(Buffer.compare(Buffer.from(out.rgb), ref)).toBe(0);
    // a horizontal ramp 0..255 halves to ~0..254 in steps of 2
    expect(Math.abs(px(out, 64, 32)[0] - 128)).toBeLessThanOrEqual(2);
  });
});
