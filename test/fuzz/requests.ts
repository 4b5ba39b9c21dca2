/**
 * A seeded generator of hostile requests for every dialect the server speaks: wrong types, huge and
 * non-finite numbers, values nested up to 10,000 deep, prototype keys, unicode and control characters in
 * keys and values, non-object and truncated JSON, wrong content types, and multipart edge cases (truncated,
 * wrong boundary, bracketed and empty names, files where text belongs). Reproducible from the seed alone.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '../../src/onnx/randomWeights.js';
import { WEB_FIELDS } from '../../src/server/dialects/web.js';

export interface Endpoint {
  dialect: 'web' | 'segmind' | 'fal' | 'openai' | 'voltage';
  path: string;
  /** The image field, and the fields the dialect documents (what its errors may name). */
  image: string;
  fields: string[];
  forms: boolean;
}

export const ENDPOINTS: Endpoint[] = [
  {
    dialect: 'web',
    path: '/api/jobs',
    image: 'image',
    forms: true,
    fields: [...WEB_FIELDS],
  },
  {
    dialect: 'segmind',
    path: '/v1/svd',
    image: 'image',
    forms: false,
    fields: ['base64', 'cond_aug', 'fps', 'frames', 'motion', 'resize_method', 'seed'],
  },
  {
    dialect: 'segmind',
    path: '/v1/motionctrl-svd',
    image: 'input_image',
    forms: false,
    fields: [
      'motion',
      'motion_bucket_id',
      'fps',
      'cond_aug',
      'seed',
      'decoding_t',
      'maintain_aspect_ratio',
      'motion_speed',
      'base64',
    ],
  },
  {
    dialect: 'fal',
    path: '/fal-ai/svd',
    image: 'image_url',
    forms: false,
    fields: ['motion_bucket_id', 'cond_aug', 'fps', 'seed', 'steps', 'mask_image_url', 'control_maps_data_url'],
  },
  {
    dialect: 'fal',
    path: '/fal-ai/fast-svd-lcm',
    image: 'image_url',
    forms: false,
    fields: ['motion_bucket_id', 'cond_aug', 'fps', 'seed', 'steps'],
  },
  {
    dialect: 'fal',
    path: '/run/fal-ai/stable-video',
    image: 'image_url',
    forms: false,
    fields: ['motion_bucket_id', 'cond_aug', 'fps', 'seed'],
  },
  {
    dialect: 'openai',
    path: '/v1/videos',
    image: 'input_reference',
    forms: true,
    fields: [
      'prompt',
      'model',
      'seconds',
      'size',
      'num_frames',
      'fps',
      'motion_bucket_id',
      'cond_aug',
      'seed',
      'num_inference_steps',
      'min_guidance_scale',
      'max_guidance_scale',
      'decode_chunk_size',
    ],
  },
  {
    dialect: 'voltage',
    path: '/v1/video/generations',
    image: 'image',
    forms: false,
    fields: [
      'model',
      'prompt',
      'image_url',
      'width',
      'height',
      'response_format',
      'num_frames',
      'fps',
      'motion_bucket_id',
      'cond_aug',
      'seed',
      'num_inference_steps',
      'min_guidance_scale',
      'max_guidance_scale',
      'decode_chunk_size',
    ],
  },
];

export interface FuzzRequest {
  endpoint: Endpoint;
  contentType?: string;
  body: Buffer;
  /** Top-level names the client used (an error may name these, or the dialect's documented fields). */
  sent: string[];
  /** What kind of malformation this is, for failure messages. */
  kind: string;
}

const PNG = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'reference', 'input_64x128.png'));
const PNG_B64 = PNG.toString('base64');

const WEIRD_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\r\n',
  'a\r\nx-injected: 1',
  'näme€',
  '💥'.repeat(40),
  '\ud800',
  'x'.repeat(5000),
  '%00',
  '../../etc/passwd',
  '/etc/passwd',
  'file:///etc/passwd',
  'http://127.0.0.1:1/a.png',
  'http://10.0.0.1/a.png',
  'http://[::1]/x.png',
  'ftp://x/y.png',
  'data:',
  'data:image/png;base64,',
  'data:image/png;base64,!!!!',
  'data:image/png,%zz',
  'NaN',
  'Infinity',
  '-Infinity',
  '1e400',
  '-0',
  '0x10',
  ' 14 ',
  '14.0000001',
  'true',
  'null',
  '[object Object]',
  '__proto__',
  'constructor',
  'svd-xt',
  '\t\v\f',
];
const WEIRD_NUMBERS = [
  0,
  -0,
  -1,
  1,
  1.5,
  13,
  14,
  25,
  64,
  127,
  255,
  256,
  2 ** 31,
  2 ** 32,
  2 ** 53 + 1,
  1e308,
  -1e308,
  5e-324,
  999_999_999_999_999,
  1e21,
];
const KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'model',
  'output',
  'device',
  'format',
  'a\r\nb',
  'näme€',
  '💥',
  '\u0000',
  '',
  ' ',
  'x'.repeat(300),
  '[x]',
  'a[b]',
  'a[b][c]',
  'a]',
  'input_reference[image_url]',
];

/** Percent-encoding that also survives lone surrogates (sent as U+FFFD, as a browser would). */
function formEncode(s: string): string {
  return encodeURIComponent(
    s.replace(/[\ud800-\udfff]/g, (c, i: number, all: string) =>
      (c >= '\ud800' && c <= '\udbff' && /[\udc00-\udfff]/.test(all[i + 1] ?? '')) ||
      (c >= '\udc00' && /[\ud800-\udbff]/.test(all[i - 1] ?? ''))
        ? c
        : '\ufffd',
    ),
  );
}

export class RequestFuzzer {
  private readonly r: () => number;
  constructor(seed: number) {
    this.r = mulberry32(seed);
  }

  private int(n: number): number {
    return Math.floor(this.r() * n);
  }

  private pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)];
  }

  private chance(p: number): boolean {
    return this.r() < p;
  }

  /** JSON text for a value nested `depth` levels deep (arrays or objects), as text so no recursion builds it. */
  private deepText(depth: number): string {
    if (this.chance(0.5)) return `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  }

  /** A JSON value as text: mostly wrong for whatever field it lands in. */
  private valueText(): string {
    switch (this.int(9)) {
      case 0:
        return JSON.stringify(this.pick(WEIRD_NUMBERS));
      case 1:
        return JSON.stringify(this.pick(WEIRD_STRINGS));
      case 2:
        return this.deepText(this.pick([2, 20, 100, 1000, 6000, 10_000]));
      case 3:
        return this.pick(['true', 'false', 'null', '[]', '{}', '[1,2,3]', '{"image_url":1}', '""']);
      case 4:
        return JSON.stringify(String(this.pick(WEIRD_NUMBERS)));
      case 5:
        return `{${this.keyText()}:${JSON.stringify(this.pick(WEIRD_STRINGS))}}`;
      case 6:
        return JSON.stringify(Array.from({ length: this.int(2000) }, (_, i) => i));
      case 7:
        return JSON.stringify(
          this.pick(['Pan Up', 'CW', 'maintain_aspect_ratio', 'crop_to_16_9', 'url', 'b64_json', '1024x576', '64x64']),
        );
      default:
        return JSON.stringify(this.pick([14, 25, 7, 6, 127, 0.02, 1, 2, 512, 576, 1024, 42]));
    }
  }

  private keyText(): string {
    return JSON.stringify(this.chance(0.5) ? this.pick(KEYS) : this.pick(WEIRD_STRINGS));
  }

  private imageValue(e: Endpoint): string {
    const good = this.chance(0.6);
    if (good) return JSON.stringify(this.pick([PNG_B64, `data:image/png;base64,${PNG_B64}`]));
    return this.pick([
      JSON.stringify(PNG_B64.slice(0, this.int(PNG_B64.length))),
      JSON.stringify(`data:image/png;base64,${PNG.subarray(0, this.int(PNG.length)).toString('base64')}`),
      JSON.stringify(Buffer.from('GIF89a not really').toString('base64')),
      e.image === 'input_reference'
        ? `{"image_url":${JSON.stringify(`data:image/png;base64,${PNG_B64}`)}}`
        : JSON.stringify(this.pick(WEIRD_STRINGS)),
      this.valueText(),
    ]);
  }

  /** A JSON object body: the image (usually), some documented fields with bad values, some odd keys. */
  private jsonObject(e: Endpoint): { text: string; sent: string[] } {
    const parts: string[] = [];
    const sent: string[] = [];
    if (this.chance(0.85)) {
      parts.push(`${JSON.stringify(e.image)}:${this.imageValue(e)}`);
      sent.push(e.image);
    }
    for (let i = this.int(4); i > 0; i--) {
      const f = this.pick(e.fields);
      parts.push(`${JSON.stringify(f)}:${this.valueText()}`);
      sent.push(f);
    }
    for (let i = this.chance(0.4) ? 1 + this.int(2) : 0; i > 0; i--) {
      const k = this.keyText();
      parts.push(`${k}:${this.valueText()}`);
      sent.push(JSON.parse(k) as string);
    }
    return { text: `{${parts.join(',')}}`, sent };
  }

  private multipart(e: Endpoint): { body: Buffer; contentType: string; sent: string[]; kind: string } {
    const boundary = `----fuzz${this.int(1e9)}`;
    const sent: string[] = [];
    const chunks: Buffer[] = [];
    const part = (name: string, value: Buffer | string, file?: boolean) => {
      sent.push(name, name.replace(/\[.*$/, ''));
      const disp = `form-data; name="${name.replace(/"/g, '%22')}"${file ? '; filename="x.png"' : ''}`;
      chunks.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: ${disp}\r\n${file ? 'Content-Type: image/png\r\n' : ''}\r\n`,
        ),
      );
      chunks.push(Buffer.isBuffer(value) ? value : Buffer.from(value));
      chunks.push(Buffer.from('\r\n'));
    };
    if (this.chance(0.8)) part(e.image, this.chance(0.7) ? PNG : PNG.subarray(0, this.int(PNG.length)), true);
    for (let i = this.int(4); i > 0; i--) {
      const name = this.chance(0.7)
        ? this.pick(e.fields)
        : this.pick([...KEYS, '__proto__[model]', 'constructor[x]', 'a[__proto__]', 'seed[prototype]']);
      part(name, this.chance(0.2) ? PNG : this.pick(WEIRD_STRINGS), this.chance(0.2));
    }
    chunks.push(Buffer.from(`--${boundary}--\r\n`));
    let body = Buffer.concat(chunks);
    let contentType = `multipart/form-data; boundary=${boundary}`;
    let kind = 'multipart';
    const twist = this.int(6);
    if (twist === 0) {
      body = body.subarray(0, this.int(body.length));
      kind = 'multipart truncated';
    } else if (twist === 1) {
      contentType = 'multipart/form-data; boundary=not-the-boundary';
      kind = 'multipart wrong boundary';
    } else if (twist === 2) {
      contentType = 'multipart/form-data';
      kind = 'multipart no boundary';
    }
    return { body, contentType, sent, kind };
  }

  next(): FuzzRequest {
    const endpoint = this.pick(ENDPOINTS);
    const roll = this.int(20);
    if (endpoint.forms && roll < 5) {
      const m = this.multipart(endpoint);
      return { endpoint, contentType: m.contentType, body: m.body, sent: m.sent, kind: m.kind };
    }
    if (endpoint.forms && roll === 5) {
      const name = this.pick([...endpoint.fields, ...KEYS, '__proto__[model]']);
      const body = `${formEncode(name)}=${formEncode(this.pick(WEIRD_STRINGS))}&${endpoint.image}=${formEncode(PNG_B64)}`;
      return {
        endpoint,
        contentType: 'application/x-www-form-urlencoded',
        body: Buffer.from(body),
        sent: [name, name.replace(/\[.*$/, ''), endpoint.image],
        kind: 'urlencoded',
      };
    }
    const { text, sent } = this.jsonObject(endpoint);
    const contentType = this.pick([
      'application/json',
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      undefined,
      'application/xml',
    ]);
    if (roll === 6)
      return {
        endpoint,
        contentType,
        body: Buffer.from(text.slice(0, this.int(text.length))),
        sent,
        kind: 'json truncated',
      };
    if (roll === 7) {
      const other = this.pick([
        '[]',
        '1',
        '"x"',
        'null',
        'true',
        '',
        '{',
        '{"a":1,}',
        '\u0000',
        '{"a":NaN}',
        '{"a":Infinity}',
        `[${this.valueText()}]`,
      ]);
      return { endpoint, contentType, body: Buffer.from(other), sent: [], kind: 'json not an object' };
    }
    if (roll === 8) {
      const deep = this.deepText(this.pick([6000, 10_000, 20_000]));
      return {
        endpoint,
        contentType,
        body: Buffer.from(`{${JSON.stringify(endpoint.image)}:${JSON.stringify(PNG_B64)},"seed":${deep}}`),
        sent: [endpoint.image, 'seed'],
        kind: 'json deep',
      };
    }
    if (roll === 9) {
      const body = `{${JSON.stringify(endpoint.image)}:${JSON.stringify(PNG_B64)},"__proto__":{"model":"no-such-dir","steps":1}}`;
      return {
        endpoint,
        contentType,
        body: Buffer.from(body),
        sent: [endpoint.image, '__proto__'],
        kind: 'json __proto__',
      };
    }
    return { endpoint, contentType, body: Buffer.from(text), sent, kind: 'json object' };
  }
}
