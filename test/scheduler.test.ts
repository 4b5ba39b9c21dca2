import { describe, expect, it } from 'vitest';
import {
  applyGuidance,
  cIn,
  cOut,
  cSkip,
  eulerStep,
  guidanceRamp,
  initNoiseSigma,
  parseSchedulerConfig,
  predictOriginalSample,
  scaleModelInput,
  setTimesteps,
  sigmasKarras,
  timestepsContinuous,
  trainingSigmas,
  timestepsDiscrete,
} from '../src/scheduler/index.js';
import { relativeError } from '../src/tensor/compare.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ref } from './helpers/reference.js';

const SVD = { sigmaMin: 0.002, sigmaMax: 700, rho: 7 };

/** Relative float32 agreement: a few ulps (docs/pipeline.md prints the values to 6–9 significant digits). */
function expectF32(got: number, want: number, rel = 2e-6): void {
  const tol = Math.max(Math.abs(want) * rel, 1e-12);
  if (Math.abs(got - want) > tol) throw new Error(`got ${got}, want ${want} (±${tol})`);
}

// docs/pipeline.md §5.6, num_inference_steps = 25: [sigma, t, c_in, c_skip, c_out]
const TABLE_25: [number, number, number, number, number][] = [
  [700, 1.6377701, 0.00142857, 2.0408122e-6, -0.99999898],
  [545.729248, 1.5755308, 0.0018324074, 3.3577169e-6, -0.99999832],
  [421.569122, 1.510996, 0.0023720836, 5.6267804e-6, -0.99999719],
  [322.453674, 1.4439899, 0.0031012058, 9.6174771e-6, -0.99999519],
  [244.023071, 1.3743157, 0.0040979388, 1.6793102e-5, -0.9999916],
  [182.547134, 1.3017521, 0.005477955, 3.0007991e-5, -0.999985],
  [134.854446, 1.2260491, 0.0074151986, 5.4985171e-5, -0.99997251],
  [98.2671356, 1.1469225, 0.010175815, 0.00010354722, -0.99994823],
  [70.5408401, 1.0640479, 0.014174761, 0.00020092384, -0.99989953],
  [49.8097916, 0.97705287, 0.020072329, 0.0004028984, -0.99979853],
  [34.5367393, 0.88550591, 0.028942543, 0.00083767082, -0.99958108],
  [23.4675121, 0.78890425, 0.042573466, 0.0018125, -0.99909334],
  [15.5899677, 0.68665689, 0.064012263, 0.0040975698, -0.99794911],
  [10.0971298, 0.57806283, 0.09855588, 0.0097132615, -0.99513152],
  [6.35426569, 0.46228158, 0.15546124, 0.024168196, -0.98784199],
  [3.86969733, 0.33829409, 0.25019901, 0.062599543, -0.96819443],
  [2.2691164, 0.20484762, 0.40327534, 0.162631, -0.91507869],
  [1.27317727, 0.06037889, 0.61768651, 0.38153663, -0.78642442],
  [0.678146005, -0.097098164, 0.82763933, 0.68498687, -0.56126031],
  [0.339378148, -0.27016008, 0.94695206, 0.89671821, -0.32137484],
  [0.157404646, -0.46223384, 0.98783743, 0.9758228, -0.1554902],
  [0.0663990751, -0.67801803, 0.99780284, 0.99561052, -0.066253186],
  [0.0248025805, -0.92420191, 0.99969256, 0.99938521, -0.024794955],
  [0.00788249541, -1.2107776, 0.99996893, 0.99993787, -0.0078822505],
  [0.00200000009, -1.553652, 0.999998, 0.999996, -0.0019999961],
];
const TABLE_4 = [TABLE_25[0], TABLE_25[8], TABLE_25[16], TABLE_25[24]];
const SIGMAS_30 = [
  700, 570.026733, 461.312958, 370.878082, 296.085663, 234.612717, 184.420792, 143.729156, 110.989365, 84.8618927,
  64.1941605, 48.0002518, 35.4421692, 25.8125038, 18.5185356, 13.0676889, 9.05426407, 6.14739466, 4.08018255,
  2.63993216, 1.65943551, 1.00924981, 0.590900242, 0.330953896, 0.175904155, 0.0878047869, 0.0405950658, 0.017055966,
  0.00633785361, 0.00200000009,
];

describe('Karras sigmas, timesteps and the EDM factors (docs/pipeline.md §5.6 tables)', () => {
  for (const [steps, table] of [
    [25, TABLE_25],
    [4, TABLE_4],
  ] as const) {
    it(`${steps} steps`, () => {
      const sigmas = sigmasKarras(steps, SVD);
      expect(sigmas).toBeInstanceOf(Float32Array);
      expect(sigmas.length).toBe(steps + 1);
      expect(sigmas[steps]).toBe(0);
      const t = timestepsContinuous(sigmas);
      expect(t.length).toBe(steps);
      table.forEach(([sigma, ts, cin, cskip, cout], i) => {
        expectF32(sigmas[i], sigma);
        expectF32(t[i], ts);
        expectF32(cIn(sigmas[i]), cin);
        expectF32(cSkip(sigmas[i]), cskip);
        expectF32(cOut(sigmas[i]), cout);
      });
    });
  }

  it('30 steps (sgm default for xt)', () => {
    const sigmas = sigmasKarras(30, SVD);
    expect(sigmas.length).toBe(31);
    SIGMAS_30.forEach((s, i) => expectF32(sigmas[i], s));
    expect(sigmas[30]).toBe(0);
  });

  it('1 step is [σ_max, 0]', () => {
    expect(Array.from(sigmasKarras(1, SVD))).toEqual([700, 0]);
    expect(() => sigmasKarras(0, SVD)).toThrow(RangeError);
  });

  it('init_noise_sigma depends on timestep_spacing', () => {
    const sigmas = sigmasKarras(25, SVD);
    expect(initNoiseSigma(sigmas, 'leading')).toBe(Math.fround(700.00073));
    expect(initNoiseSigma(sigmas, 'linspace')).toBe(700);
    expect(initNoiseSigma(sigmas, 'trailing')).toBe(700);
  });
});

describe('against the diffusers reference run (test/fixtures/reference/out)', () => {
  const cfg = parseSchedulerConfig(
    JSON.parse(
      readFileSync(join(import.meta.dirname, 'fixtures/reference/tiny-svd/scheduler/scheduler_config.json'), 'utf8'),
    ),
    'scheduler_config.json',
  );

  it('sigmas, timesteps and init_noise_sigma', () => {
    const s = setTimesteps(cfg, 4);
    expect(relativeError(s.sigmas, ref('scheduler_sigmas').data)).toBeLessThan(1e-6);
    expect(relativeError(s.timesteps, ref('scheduler_timesteps').data)).toBeLessThan(1e-6);
    expect(relativeError([s.initNoiseSigma], ref('init_noise_sigma').data)).toBeLessThan(1e-6);
    for (let i = 0; i < 4; i++) expectF32(s.timesteps[i], ref(`step${i}_unet_timestep`).data[0], 1e-6);
  });

  it('guidance ramp', () => {
    const g = ref('guidance_scale');
    expect(g.shape).toEqual([1, 4, 1, 1, 1]);
    expect(relativeError(guidanceRamp(1, 3, 4), g.data)).toBeLessThan(1e-6);
  });

  it('guidance combination: step0_unet_output → step0_noise_pred, for every step', () => {
    const ramp = guidanceRamp(1, 3, 4);
    const frameSize = 4 * 32 * 64;
    for (let i = 0; i < 4; i++) {
      const out = ref(`step${i}_unet_output`);
      const want = ref(`step${i}_noise_pred`);
      const got = applyGuidance(out.data, ramp, 4, frameSize);
      expect(got.length).toBe(want.data.length);
      expect(relativeError(got, want.data)).toBeLessThan(1e-6);
    }
  });

  it('scale_model_input: step latents → scaled UNet input (both CFG halves)', () => {
    const { sigmas } = setTimesteps(cfg, 4);
    for (let i = 0; i < 4; i++) {
      const latents = ref(`step${i}_latents_in`).data;
      const want = ref(`step${i}_scaled_latent_input`).data;
      const scaled = scaleModelInput(latents, sigmas[i]);
      expect(relativeError(scaled, want.subarray(0, latents.length))).toBeLessThan(1e-6);
      expect(relativeError(scaled, want.subarray(latents.length))).toBeLessThan(1e-6);
    }
  });

  it('one Euler step: latents_in + noise_pred → latents and pred_original_sample, for every step', () => {
    const { sigmas } = setTimesteps(cfg, 4);
    for (let i = 0; i < 4; i++) {
      const x = ref(`step${i}_latents_in`).data;
      const v = ref(`step${i}_noise_pred`).data;
      const next = eulerStep(x, v, sigmas[i], sigmas[i + 1], cfg.predictionType);
      expect(relativeError(next, ref(`step${i}_latents`).data)).toBeLessThan(1e-6);
      const d = predictOriginalSample(x, v, sigmas[i], cfg.predictionType);
      expect(relativeError(d, ref(`step${i}_pred_original_sample`).data)).toBeLessThan(1e-6);
    }
  });

  it('the step chain: initial noise · init_noise_sigma = initial latents = step0_latents_in', () => {
    const { initNoiseSigma: s0 } = setTimesteps(cfg, 4);
    const noise = ref('initial_noise').data;
    const latents = Float32Array.from(noise, (n) => n * s0);
    expect(relativeError(latents, ref('initial_latents').data)).toBeLessThan(1e-7);
    expect(relativeError(latents, ref('step0_latents_in').data)).toBeLessThan(1e-7);
  });
});

describe('Euler step formulas', () => {
  it('v_prediction: D = c_skip·x + c_out·v and x_next = D + (σ_next/σ)(x − D)', () => {
    const x = Float32Array.of(1.5, -2, 0.25);
    const v = Float32Array.of(0.5, 1, -3);
    const sigma = 2.2691164;
    const next = 0.0020000001;
    const D = predictOriginalSample(x, v, sigma);
    const xn = eulerStep(x, v, sigma, next);
    for (let i = 0; i < 3; i++) {
      const d = x[i] / (sigma * sigma + 1) - (v[i] * sigma) / Math.sqrt(sigma * sigma + 1);
      expect(D[i]).toBeCloseTo(d, 5);
      expect(xn[i]).toBeCloseTo(d + (next / sigma) * (x[i] - d), 5);
    }
    // the last step lands on D
    const last = eulerStep(x, v, sigma, 0);
    for (let i = 0; i < 3; i++) expect(last[i]).toBeCloseTo(D[i], 6);
  });

  it('epsilon: D = x − σ·ε', () => {
    const x = Float32Array.of(10, -4);
    const eps = Float32Array.of(1, 2);
    expect(Array.from(predictOriginalSample(x, eps, 3, 'epsilon'))).toEqual([7, -10]);
    // d = ε, x_next = x + ε·(σ_next − σ)
    expect(Array.from(eulerStep(x, eps, 3, 1, 'epsilon'))).toEqual([8, -8]);
  });

  it('refuses mismatched lengths', () => {
    expect(() => eulerStep(new Float32Array(3), new Float32Array(4), 1, 0)).toThrow(/4 values, latents have 3/);
    expect(() => applyGuidance(new Float32Array(10), guidanceRamp(1, 3, 2), 2, 3)).toThrow(/expected 2·2·3 = 12/);
  });
});

describe('guidance ramp', () => {
  it('first frame min, last frame max, linear in between (docs/pipeline.md §6 examples)', () => {
    const r25 = guidanceRamp(1, 3, 25);
    expect(r25[0]).toBe(1);
    expect(r25[24]).toBe(3);
    expectF32(r25[1], 1.08333, 5e-6); // docs/pipeline.md prints 6 digits
    expectF32(r25[2], 1.16667, 5e-6); // docs/pipeline.md prints 6 digits
    expectF32(r25[3], 1.25, 5e-6); // docs/pipeline.md prints 6 digits
    expectF32(r25[23], 2.91667, 5e-6); // docs/pipeline.md prints 6 digits
    const r14 = guidanceRamp(1, 3, 14);
    expectF32(r14[1], 1.15385, 5e-6); // docs/pipeline.md prints 6 digits
    expectF32(r14[2], 1.30769, 5e-6); // docs/pipeline.md prints 6 digits
    expectF32(r14[12], 2.84615, 5e-6); // docs/pipeline.md prints 6 digits
    expect(Array.from(guidanceRamp(1.5, 3, 1))).toEqual([1.5]);
  });

  it('applies g_f per frame: uncond + g·(cond − uncond)', () => {
    // 2 frames × 2 values; uncond = 1, cond = 3 → 1 + g·2
    const out = Float32Array.of(1, 1, 1, 1, 3, 3, 3, 3);
    const g = guidanceRamp(1, 2, 2);
    expect(Array.from(applyGuidance(out, g, 2, 2))).toEqual([3, 3, 5, 5]);
  });
});

describe('scheduler_config.json', () => {
  const base = JSON.parse(
    readFileSync(join(import.meta.dirname, 'fixtures/reference/tiny-svd/scheduler/scheduler_config.json'), 'utf8'),
  );

  it("reads SVD's config", () => {
    expect(parseSchedulerConfig(base, 'x')).toEqual({
      predictionType: 'v_prediction',
      sigmaMin: 0.002,
      sigmaMax: 700,
      rho: 7,
      timestepSpacing: 'leading',
      timestepType: 'continuous',
      numTrainTimesteps: 1000,
      betaStart: 0.00085,
      betaEnd: 0.012,
      betaSchedule: 'scaled_linear',
    });
  });

  it('names the key and what is allowed', () => {
    const bad = (patch: Record<string, unknown>) => () =>
      parseSchedulerConfig({ ...base, ...patch }, '/m/scheduler_config.json');
    expect(bad({ prediction_type: 'sample' })).toThrow(
      /\/m\/scheduler_config.json: prediction_type must be one of "v_prediction", "epsilon" \(got "sample"\)/,
    );
    expect(bad({ use_karras_sigmas: false })).toThrow(/use_karras_sigmas must be true/);
    expect(bad({ use_karras_sigmas: undefined })).toThrow(/use_karras_sigmas must be true/);
    expect(bad({ final_sigmas_type: 'sigma_min' })).toThrow(/final_sigmas_type must be "zero" or absent/);
    expect(bad({ sigma_max: -1 })).toThrow(/sigma_max must be a positive number/);
    expect(bad({ sigma_min: 800 })).toThrow(/sigma_min must be smaller than sigma_max/);
    expect(bad({ _class_name: 'DDIMScheduler' })).toThrow(/_class_name must be "EulerDiscreteScheduler"/);
    expect(bad({ timestep_spacing: 'weird' })).toThrow(/timestep_spacing must be one of/);
    expect(() => parseSchedulerConfig([1], 'a.json')).toThrow(/a JSON object/);
  });

  it('epsilon uses discrete timesteps on the training table', () => {
    const cfg = parseSchedulerConfig({ ...base, prediction_type: 'epsilon' }, 'x');
    const table = trainingSigmas(cfg);
    expect(table.length).toBe(1000);
    // SD's scaled_linear table: σ_0 ≈ 0.0292, σ_999 ≈ 14.6146 (the well-known SD range)
    expectF32(table[0], 0.0291675, 1e-4);
    expectF32(table[999], 14.614642, 1e-5);
    // a σ that is exactly a table entry maps to its index; beyond the table, t clamps to the ends
    const t = timestepsDiscrete(Float32Array.of(table[500], 700, 0.002, 0), table);
    expect(t[0]).toBeCloseTo(500, 4);
    expect(t[1]).toBe(999);
    expect(t[2]).toBe(0);
    const s = setTimesteps(cfg, 25);
    expect(s.timesteps[0]).toBe(999);
    expect(s.timesteps[24]).toBe(0);
  });
});
