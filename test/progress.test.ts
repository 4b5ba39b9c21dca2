/** The CLI's step progress line. */
import { describe, expect, it } from 'vitest';
import { renderStep } from '../src/cli/progress.js';

describe('step progress line', () => {
  it('shows step, bar, rate and ETA', () => {
    expect(renderStep(5, 25, 2500, 25)).toBe(`step 5/25 [${'#'.repeat(5)}${'.'.repeat(20)}] 2.00 it/s ETA 0:10`);
    expect(renderStep(1, 25, 4000, 10)).toBe(`step 1/25 [..........] 4.00 s/it ETA 1:36`);
    expect(renderStep(25, 25, 5000, 4)).toBe('step 25/25 [####] 5.00 it/s ETA 0:00');
  });
});
