/**
 * `scripts/make-bundle`: svd-runtime for an offline linux-x64 machine in one archive — the compiled package, its
 * production dependencies with only their linux-x64 binaries (onnxruntime-node with its CUDA-less CPU + WebGPU
 * build, sharp/libvips, Dawn for the adapter report), the embedded tiny model and a Node 20 binary — under 60 MiB.
 *
 *   npx tsx scripts/make-bundle.ts [--out <dir>] [--node <node binary>] [--check]
 *
 * On the target: `tar -xJf svd-runtime-<version>-linux-x64.tar.xz && svd-runtime-<version>-linux-x64/svd doctor`.
 * Left out to stay under the size: ffmpeg/ffprobe (the optional @ffmpeg-installer packages, ~140 MiB); the bundle
 * uses the machine's ffmpeg for video formats and needs none for `--format png`. The CUDA provider libraries are not
 * in onnxruntime-node either: `svd setup cuda` needs network, so copy them in from a connected machine (README).
 * `--check` unpacks the archive into an empty directory and generates with the tiny model using the bundled node,
 * with a PATH that has no node on it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import sharp from 'sharp';

const ROOT = resolve(import.meta.dirname, '..');
const LIMIT = 60 * 2 ** 20;
/** Optional dependencies not bundled (see the header). */
const EXCLUDED = [/^@ffmpeg-installer\//, /^@ffprobe-installer\//];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return execFileSync(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  });
}

/** Package directories (relative to ROOT) of the production dependency tree. */
function productionPackages(): string[] {
  const out = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  }).stdout;
  const dirs = out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && l !== ROOT)
    .map((l) => relative(ROOT, l));
  // top-level packages only (nested node_modules come along with their parent)
  return [...new Set(dirs.filter((d) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(d)))].filter((d) => {
    const name = d.replace(/^node_modules\//, '');
    return !EXCLUDED.some((re) => re.test(name)) && existsSync(join(ROOT, d));
  });
}

/** Keeps only linux-x64 native files where a package ships every platform's. */
function pruneToLinuxX64(nodeModules: string): void {
  const ortBin = join(nodeModules, 'onnxruntime-node', 'bin', 'napi-v6');
  for (const platform of readdirSync(ortBin)) {
    if (platform !== 'linux') rmSync(join(ortBin, platform), { recursive: true, force: true });
    else
      for (const arch of readdirSync(join(ortBin, platform)))
        if (arch !== 'x64') rmSync(join(ortBin, platform, arch), { recursive: true, force: true });
  }
  const dawn = join(nodeModules, 'webgpu', 'dist');
  if (existsSync(dawn))
    for (const d of readdirSync(dawn)) if (d !== 'linux-x64') rmSync(join(dawn, d), { recursive: true, force: true });
}

function sizeOf(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((sum, n) => sum + sizeOf(join(path, n)), 0);
}

const MiB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const outDir = resolve(arg('--out') ?? join(ROOT, 'dist-bundle'));
  const nodeBinary = resolve(arg('--node') ?? process.execPath);
  const nodeVersion = run(nodeBinary, ['--version']).trim();
  if (!/^v20\./.test(nodeVersion))
    throw new Error(
      `--node ${nodeBinary} is ${nodeVersion}; the bundle ships Node 20 (pass --node <path to a Node 20 binary>)`,
    );
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; files: string[] };
  const name = `svd-runtime-${pkg.version}-linux-x64`;

  process.stderr.write('compiling (npm run build)\n');
  run('npm', ['run', 'build', '--silent']);
  const work = mkdtempSync(join(tmpdir(), 'svd-bundle-'));
  const stage = join(work, name);
  mkdirSync(stage);
  for (const f of ['package.json', ...pkg.files])
    cpSync(join(ROOT, f), join(stage, f), { recursive: true, dereference: true });
  const packages = productionPackages();
  for (const d of packages) cpSync(join(ROOT, d), join(stage, d), { recursive: true, dereference: true });
  pruneToLinuxX64(join(stage, 'node_modules'));
  mkdirSync(join(stage, 'node', 'bin'), { recursive: true });
  cpSync(nodeBinary, join(stage, 'node', 'bin', 'node'));
  chmodSync(join(stage, 'node', 'bin', 'node'), 0o755);
  writeFileSync(
    join(stage, 'svd'),
    '#!/bin/sh\n# svd with the bundled Node 20 (no system Node needed)\nhere=$(dirname "$(readlink -f "$0")")\nexec "$here/node/bin/node" "$here/bin/svd.js" "$@"\n',
  );
  chmodSync(join(stage, 'svd'), 0o755);
  process.stderr.write(`staged ${packages.length} packages, ${MiB(sizeOf(stage))} uncompressed; compressing (xz)\n`);

  mkdirSync(outDir, { recursive: true });
  const archive = join(outDir, `${name}.tar.xz`);
  run('tar', ['-cJf', archive, '-C', work, name], { env: { ...process.env, XZ_OPT: '-6 -T0' } });
  rmSync(work, { recursive: true, force: true });
  const size = statSync(archive).size;
  process.stdout.write(
    `${JSON.stringify({ archive, bytes: size, mib: Number((size / 2 ** 20).toFixed(1)), node: nodeVersion, packages: packages.length })}\n`,
  );
  if (size >= LIMIT) throw new Error(`${archive} is ${MiB(size)}, over the ${MiB(LIMIT)} limit`);
  if (process.argv.includes('--check')) await check(archive, name);
}

/** Unpacks into an empty directory and makes frames with the tiny model, using only the bundled node. */
async function check(archive: string, name: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'svd-bundle-check-'));
  try {
    run('tar', ['-xJf', archive, '-C', dir]);
    const image = join(dir, 'input.png');
    await sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 200, g: 120, b: 40 } } })
      .png()
      .toFile(image);
    // a PATH with the launcher's two tools and no node: only the bundled binary can run svd
    const tools = join(dir, 'tools');
    mkdirSync(tools);
    for (const t of ['dirname', 'readlink']) symlinkSync(run('sh', ['-c', `command -v ${t}`]).trim(), join(tools, t));
    const env = { PATH: tools, HOME: dir, SVD_CACHE_DIR: join(dir, 'cache'), HF_HUB_OFFLINE: '1' };
    const out = join(dir, 'frames');
    const t0 = performance.now();
    const r = spawnSync(
      join(dir, name, 'svd'),
      ['generate', image, '--model', 'tiny', '--device', 'cpu', '--format', 'png', '--output', out, '--json'],
      { cwd: dir, env, encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`bundle check failed (exit ${r.status}):\n${r.stderr}\n${r.stdout}`);
    const frames = existsSync(out) ? readdirSync(out).filter((f) => f.endsWith('.png')) : [];
    if (!frames.length) throw new Error(`bundle check: no PNG frames in ${out}:\n${r.stdout}`);
    process.stdout.write(
      `${JSON.stringify({ check: 'ok', frames: frames.length, seconds: Number(((performance.now() - t0) / 1000).toFixed(1)), in: basename(dir) })}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`make-bundle: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
