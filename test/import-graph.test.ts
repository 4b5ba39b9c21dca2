/**
 * The folders of src/ depend on each other without cycles (request → pipeline → backends → server → cli, ...),
 * so each can be read, tested and replaced from the bottom up. Files at src/'s top level (errors.ts,
 * index.ts) count as folders of their own.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../src');

/** `from '...'`, `import '...'`, `import('...')` and `export ... from '...'` with a relative specifier. */
const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

function folderOf(file: string): string {
  const parts = relative(SRC, file).split('/');
  return parts.length > 1 ? parts[0] : parts[0].replace(/\.[jt]s$/, '');
}

/** Folder → folders it imports from, with one example file per edge. */
function folderGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const to = folderOf(resolve(dirname(file), m[1]));
      if (to === from) continue;
      if (!graph.has(from)) graph.set(from, new Map());
      if (!graph.get(from)!.has(to)) graph.get(from)!.set(to, relative(SRC, file));
    }
  }
  return graph;
}

/** Every cycle found by a depth-first search, each as its path of folders. */
function findCycles(edges: Map<string, Iterable<string>>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...edges.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

describe('import graph of src/ folders', () => {
  it('finds a cycle when there is one', () => {
    const edges = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(findCycles(edges)).toEqual([['a', 'b', 'c', 'a']]);
    expect(
      findCycles(
        new Map([
          ['a', ['b']],
          ['b', ['c']],
        ]),
      ),
    ).toEqual([]);
  });

  it('sees the imports (the pipeline uses the request types, the CLI uses everything)', () => {
    const graph = folderGraph();
    expect([...graph.get('pipeline')!.keys()]).toContain('request');
    expect([...graph.get('cli')!.keys()]).toEqual(expect.arrayContaining(['backends', 'pipeline', 'server']));
  });

  it('has no cycle between folders', () => {
    const graph = folderGraph();
    const cycles = findCycles(new Map([...graph].map(([k, v]) => [k, [...v.keys()]])));
    const explain = cycles.map((c) =>
      c.map((f, i) => (i + 1 < c.length ? `${f} (${graph.get(f)!.get(c[i + 1])})` : f)).join(' → '),
    );
    expect(explain).toEqual([]);
  });
});
