/** Error measures used to compare our tensors with the diffusers reference (README, "What matches means"). */

/** ‖a − b‖₂ / ‖b‖₂ (b is the reference). When ‖b‖ = 0 this is ‖a − b‖₂. Lengths must match. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  checkLengths(a, b);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** max |a − b| (NaN anywhere gives NaN). Lengths must match. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  checkLengths(a, b);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return NaN;
    if (d > m) m = d;
  }
  return m;
}

function checkLengths(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new RangeError(`cannot compare arrays of ${a.length} and ${b.length} values`);
}
