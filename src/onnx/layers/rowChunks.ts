/**
 * A row-wise computation over row chunks inside an ONNX Loop, so that no tensor of it is larger than a byte budget:
 * what keeps token-wise layers (the transformers' feed-forward, whose GEGLU projection is the UNet's largest tensor)
 * within a WebGPU binding limit (docs/webgpu.md). Every row's arithmetic is the unchunked one, so the result is the
 * same; rows are padded up to a whole number of chunks (a Loop's scan outputs all have one shape) and the padding
 * is sliced off after, as in the chunked attention (attention.ts).
 */
import type { GraphBuilder, Value } from '../graph.js';
import { reshape, shapeConcat, shapeOf } from './basic.js';

/**
 * `f` on x [R, C] in chunks of ⌊maxBytes / rowBytes⌋ rows (at least 1; all rows when they fit): `rowBytes` is
 * what one row takes in f's largest intermediate. `f` builds its nodes on the Loop body's builder and may read
 * any value of the enclosing graph (its weights); it returns [rows, outCols].
 */
export function mapRowChunks(
  g: GraphBuilder,
  x: Value /* [R, C] */,
  o: { rowBytes: number; maxBytes: number; outCols: number; name: string },
  f: (body: GraphBuilder, rows: Value) => Value,
): Value /* [R, outCols] */ {
  const rows = shapeOf(g, x, 0, 1); // [1] R
  const fit = Math.max(1, Math.floor(o.maxBytes / o.rowBytes));
  const chunk = g.op('Min', [g.int64([fit]), rows], {}, { name: `${o.name}_chunk` });
  const count = g.op('Div', [g.op('Sub', [g.op('Add', [rows, chunk]), g.int64([1])]), chunk]);
  const padRows = g.op('Sub', [g.op('Mul', [count, chunk]), rows]);
  const padded = g.op('Pad', [x, shapeConcat(g, [[0, 0], padRows, [0]])], {}, { name: `${o.name}_padded` });
  const body = g.subgraph(
    g.fresh(`${o.name}_body`),
    [
      { name: 'chunk_index', dtype: 'int64', shape: [] },
      { name: 'cond', dtype: 'bool', shape: [] },
    ],
    (b, [i, cond]) => {
      const start = b.op('Mul', [b.op('Unsqueeze', [i, b.int64([0])]), chunk]);
      const part = b.op('Slice', [padded, start, b.op('Add', [start, chunk]), b.int64([0])], {}, { name: 'rows' });
      return [b.op('Identity', [cond]), f(b, part)];
    },
  );
  const trips = g.op('Squeeze', [count, g.int64([0])]);
  const [stacked] = g.opMulti('Loop', [trips, null], 1, { body }, { name: `${o.name}_loop`, dtype: x.dtype });
  const joined = reshape(g, stacked, [-1, o.outCols]); // [count·chunk, outCols]
  return g.op('Slice', [joined, g.int64([0]), rows, g.int64([0])], {}, { name: `${o.name}_rows` });
}
