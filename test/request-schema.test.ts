/** The request schema: defaults, field errors, and random bad requests (never a crash, always field errors). */
import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../src/errors.js';
import { generationRequestSchema, parseRequest, resolveRequest } from '../src/request/schema.js';
import { createRng } from '../src/tensor/random.js';

const defaults = {
  frames: 14,
  fps: 7,
  motionBucketId: 127,
  condAug: 0.02,
  minGuidance: 1,
  maxGuidance: 3,
  width: 1024,
  height: 576,
  steps: 25,
};

describe('request schema', () => {
  it('applies schema defaults, then model defaults, and reports the seed it picked', () => {
    const req = resolveRequest(parseRequest({ image: 'a.png' }), defaults, () => 1234);
    expect(req).toMatchObject({
      steps: 25,
      format: 'mp4',
      device: 'auto',
      frames: 14,
      fps: 7,
      motionBucketId: 127,
      condAug: 0.02,
      width: 1024,
      height: 576,
      seed: 1234,
      decodeChunkSize: 14,
      resize: 'stretch',
    });
    expect(resolveRequest(parseRequest({ image: 'a.png', seed: -1 }), defaults, () => 99).seed).toBe(99);
    expect(
      resolveRequest(parseRequest({ image: 'a.png', seed: 5, frames: 6, decodeChunkSize: 9 }), defaults, () => 99),
    ).toMatchObject({ seed: 5, decodeChunkSize: 6 });
  });

  it("takes every model-dependent value from the model: a manifest default of 4 steps applies, a request's own wins", () => {
    expect(parseRequest({ image: 'a.png' }).steps).toBeUndefined();
    const lcm = { ...defaults, steps: 4, fps: 6, decodeChunkSize: 2 };
    expect(resolveRequest(parseRequest({ image: 'a.png' }), lcm, () => 1)).toMatchObject({
      steps: 4,
      fps: 6,
      decodeChunkSize: 2,
    });
    expect(resolveRequest(parseRequest({ image: 'a.png', steps: 9 }), lcm, () => 1).steps).toBe(9);
    // the schema itself carries no default for a field the model decides
    const modelFields = Object.keys(defaults);
    const shape = generationRequestSchema.shape as Record<
      string,
      { safeParse(v: unknown): { success: boolean; data?: unknown } }
    >;
    for (const field of modelFields)
      expect(shape[field].safeParse(undefined)).toEqual({ success: true, data: undefined });
  });

  it('names every bad field with its value and what is allowed, in one error', () => {
    let err: InvalidRequestError | undefined;
    try {
      parseRequest({
        image: '',
        steps: 0,
        fps: 61,
        motionBucketId: 1.5,
        width: 100,
        height: 64,
        format: 'avi',
        colour: 'red',
      });
    } catch (e) {
      err = e as InvalidRequestError;
    }
    expect(err).toBeInstanceOf(InvalidRequestError);
    const byField = Object.fromEntries(err!.issues.map((i) => [i.field, i.message]));
    expect(Object.keys(byField).sort()).toEqual(
      ['colour', 'format', 'fps', 'image', 'motionBucketId', 'steps', 'width'].sort(),
    );
    expect(byField.steps).toBe('must be from 1 to 100');
    expect(byField.width).toMatch(/multiple of 64/);
    expect(err!.message).toMatch(/fps: must be from 1 to 60 \(got 61\)/);
  });

  it('refuses min guidance above max and a lone width', () => {
    expect(() => parseRequest({ image: 'a', minGuidance: 3, maxGuidance: 2 })).toThrow(
      /minGuidance: must not exceed maxGuidance/,
    );
    expect(() => parseRequest({ image: 'a', width: 512 })).toThrow(/height: width and height must be given together/);
  });

  it('never crashes on random bad requests: each is accepted or refused with field errors about its own fields', () => {
    const rng = createRng(20261121);
    const rand = () => rng.nextFloat64();
    const keys = Object.keys(generationRequestSchema.shape).concat(['bogus', 'nested']);
    const values: Array<() => unknown> = [
      () => Math.floor(rand() * 600) - 300,
      () => rand() * 1e6,
      () => -rand(),
      () => Number.NaN,
      () => Infinity,
      () => 'x'.repeat(Math.floor(rand() * 5)),
      () => null,
      () => [],
      () => ({ a: 1 }),
      () => true,
      () => '12',
      () => new Uint8Array(3),
      () => undefined,
      () => 64 * Math.floor(rand() * 40),
    ];
    let accepted = 0;
    for (let n = 0; n < 2000; n++) {
      const input: Record<string, unknown> = {};
      if (rand() < 0.9) input.image = rand() < 0.8 ? 'cat.png' : values[Math.floor(rand() * values.length)]();
      // each field set with probability 0.2: with 26 fields, higher rates leave almost no request valid
      for (const k of keys) if (rand() < 0.2) input[k] = values[Math.floor(rand() * values.length)]();
      try {
        parseRequest(input);
        accepted++;
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidRequestError);
        for (const issue of (e as InvalidRequestError).issues) {
          const top = issue.field.split('.')[0];
          expect(top === '(request)' || keys.includes(top) || top === 'image', `field ${issue.field}`).toBe(true);
          expect(issue.message.length).toBeGreaterThan(5);
        }
      }
    }
    expect(accepted).toBeGreaterThan(0);
  });
});
