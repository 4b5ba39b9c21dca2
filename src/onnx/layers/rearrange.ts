/**
 * `rearrange`: reshapes and transposes written as einops patterns, the way sgm writes them
 * (`"(b t) c h w -> b c t h w"`), instead of hand-built shape tensors. An axis size comes from a literal or
 * a 1-element int64 Value given in `sizes`, from the input when the axis stands alone on the left, or is
 * inferred (at most one unknown per reshape, as Reshape's −1). The result is at most Reshape → Transpose →
 * Reshape, each left out when it would do nothing; pure data movement, so the values are exactly those of
 * any other way of writing the same reshape.
 *
 * @example
 *   rearrange(g, h, '(b f) c h w -> b c f h w', { f: frames }); // frames: Value [1] int64
 *   rearrange(g, q, 'b s (h d) -> b h s d', { h: 8, d: 64 });
 */
import type { GraphBuilder, Value } from '../graph.js';
import { reshape, shapeConcat, shapeOf, transpose } from './basic.js';

/** An axis size: a literal, or a Value holding one int64. */
export type AxisSize = number | Value;

/** One entry of a Reshape target: a literal (0 copies, −1 infers), an axis Value, or input dimension `in`. */
type Dim = number | Value | { in: number };

/** `a (b c) d` → [['a'], ['b', 'c'], ['d']]. */
function parseSide(side: string, pattern: string): string[][] {
  const groups: string[][] = [];
  const re = /\(([^()]*)\)|([A-Za-z_][A-Za-z0-9_]*)|(\S)/g;
  for (const m of side.matchAll(re)) {
    if (m[3] !== undefined) throw new Error(`rearrange: unexpected "${m[3]}" in "${pattern}"`);
    groups.push(m[1] !== undefined ? m[1].trim().split(/\s+/).filter(Boolean) : [m[2]]);
  }
  return groups;
}

export function parsePattern(pattern: string): { left: string[][]; right: string[][] } {
  const sides = pattern.split('->');
  if (sides.length !== 2) throw new Error(`rearrange: "${pattern}" needs exactly one "->"`);
  const left = parseSide(sides[0], pattern);
  const right = parseSide(sides[1], pattern);
  const l = left.flat();
  const r = right.flat();
  const distinct = new Set(l).size === l.length && new Set(r).size === r.length;
  if (!distinct || l.length !== r.length || l.some((a) => !r.includes(a))) {
    throw new Error(`rearrange: "${pattern}" must name the same axes once on each side`);
  }
  return { left, right };
}

const sameAxes = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Reshape targets for going from `from` groups to `to` groups: per target group a copy (0) where it is the
 * source's group at the same index, else its size; null when two sizes are unknown.
 */
function targetDims(from: string[][], to: string[][], size: (axis: string) => Dim | undefined): Dim[] | null {
  let unknown = 0;
  const dims: Dim[] = to.map((group, i) => {
    if (from[i] && sameAxes(from[i], group)) return 0;
    const sizes = group.map(size);
    if (sizes.every((s) => typeof s === 'number')) return (sizes as number[]).reduce((a, b) => a * b, 1);
    if (group.length === 1 && sizes[0] !== undefined) return sizes[0];
    unknown++;
    return -1;
  });
  return unknown > 1 ? null : dims;
}

/** A Reshape target as literals where it can, else one shape tensor (runs of input dimensions sliced once). */
function shapeTensor(g: GraphBuilder, x: Value, dims: Dim[]): number[] | Value {
  if (dims.every((d) => typeof d === 'number')) return dims as number[];
  const parts: Array<Value | number[]> = [];
  for (let i = 0; i < dims.length; i++) {
    const d = dims[i];
    if (typeof d === 'number') {
      const last = parts.at(-1);
      if (Array.isArray(last)) last.push(d);
      else parts.push([d]);
    } else if ('in' in d) {
      let end = d.in + 1;
      const next = (k: number) => dims[k] as { in?: number } | number | undefined;
      while (i + 1 < dims.length && typeof next(i + 1) === 'object' && (next(i + 1) as { in?: number }).in === end) {
        i++;
        end++;
      }
      parts.push(shapeOf(g, x, d.in, end));
    } else {
      parts.push(d);
    }
  }
  return shapeConcat(g, parts);
}

/**
 * Rearranges `x` by an einops pattern; see the module comment. Throws (at graph-build time) when the
 * pattern is malformed or two sizes of one reshape cannot be known.
 */
export function rearrange(g: GraphBuilder, x: Value, pattern: string, sizes: Record<string, AxisSize> = {}): Value {
  const { left, right } = parsePattern(pattern);
  const size = (axis: string): Dim | undefined => {
    if (sizes[axis] !== undefined) return sizes[axis];
    const i = left.findIndex((group) => group.length === 1 && group[0] === axis);
    return i >= 0 ? { in: i } : undefined;
  };
  const elementary = left.flat().map((a) => [a]);
  if (sameAxes(left.flat(), right.flat())) {
    if (
      sameAxes(
        left.map((gr) => gr.join(' ')),
        right.map((gr) => gr.join(' ')),
      )
    )
      return x;
    const dims = targetDims(left, right, size);
    if (!dims) throw new Error(`rearrange: "${pattern}" needs more sizes (two unknown in one reshape)`);
    return reshape(g, x, shapeTensor(g, x, dims));
  }
  // Axes that stay together and in order on both sides can move as one (a lower-rank transpose); of the two
  // ways, the cheaper in nodes is taken (merged axes first on a tie).
  const plans = [mergeRuns(left, right), elementary]
    .map((axes) => {
      const split = targetDims(left, axes, size);
      const permuted = [...axes].sort((p, q) => right.flat().indexOf(p[0]) - right.flat().indexOf(q[0]));
      const merged = targetDims(permuted, right, size);
      const needsSplit = !(axes.length === left.length && split?.every((d) => d === 0));
      const needsMerge = !(permuted.length === right.length && merged?.every((d) => d === 0));
      // a Reshape costs 1, half more when its target needs Shape/Concat nodes (not all literals)
      const cost = (needed: boolean, dims: Dim[] | null) =>
        needed ? (dims?.every((d) => typeof d === 'number') ? 1 : 1.5) : 0;
      const total = 1 + cost(needsSplit, split) + cost(needsMerge, merged);
      return { axes, split, permuted, merged, cost: total, needsSplit, needsMerge };
    })
    .filter((p) => p.split && p.merged);
  if (!plans.length) throw new Error(`rearrange: "${pattern}" needs more sizes (two unknown in one reshape)`);
  const plan = plans.reduce((best, p) => (p.cost < best.cost ? p : best));
  const inner = plan.needsSplit ? reshape(g, x, shapeTensor(g, x, plan.split!)) : x;
  const moved = transpose(
    g,
    inner,
    plan.permuted.map((group) => plan.axes.findIndex((a) => sameAxes(a, group))),
  );
  return plan.needsMerge ? reshape(g, moved, shapeTensor(g, x, plan.merged!)) : moved;
}

/** Whether two axes are in one group of a side, or each stands alone there. */
function sameOrSingles(groups: string[][], a: string, b: string): boolean {
  const ga = groups.findIndex((gr) => gr.includes(a));
  const gb = groups.findIndex((gr) => gr.includes(b));
  return ga === gb || (groups[ga].length === 1 && groups[gb].length === 1);
}

/** Maximal runs of axes adjacent and in the same order on both sides, never crossing a group on either side. */
function mergeRuns(left: string[][], right: string[][]): string[][] {
  const l = left.flat();
  const r = right.flat();
  const runs: string[][] = [];
  for (const axis of l) {
    const run = runs.at(-1);
    const prev = run?.at(-1);
    const together =
      prev !== undefined &&
      l.indexOf(axis) === l.indexOf(prev) + 1 &&
      r.indexOf(axis) === r.indexOf(prev) + 1 &&
      sameOrSingles(left, axis, prev) &&
      sameOrSingles(right, axis, prev);
    if (run && together) run.push(axis);
    else runs.push([axis]);
  }
  return runs;
}
