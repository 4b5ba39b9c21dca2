/**
 * `svd setup cuda` without any network: onnxruntime-node's real installer routed through a loopback
 * proxy that refuses (the "unreachable host" case), fake installer scripts through SVD_ORT_INSTALLER,
 * and a fake `ldd` for the linkage report. Nothing is written into the real node_modules: the success
 * path uses a temporary binDir.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExecutionProviderError } from '../src/errors.js';
import { ortBinaryDir } from '../src/runtime/device.js';
import { formatSetupReport, nugetPackageUrl, setupCuda } from '../src/setup/cuda.js';
import { describeLinkage, parseLdd } from '../src/setup/ldd.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');

const OFFLINE_INSTALLER = `
console.log('Downloading https://api.nuget.org/v3/index.json');
Promise.reject(Object.assign(new Error('getaddrinfo ENOTFOUND api.nuget.org'), { code: 'ENOTFOUND' }));
`;

// Writes the three libraries where it is told and prints the install flag it saw.
const OK_INSTALLER = `
const fs = require('fs'), path = require('path');
console.log('flag=' + process.env.ONNXRUNTIME_NODE_INSTALL + ' npmflag=' + process.env.npm_config_onnxruntime_node_install);
for (const n of ['cuda', 'shared', 'tensorrt']) fs.writeFileSync(path.join(process.env.SVD_ORT_BIN_DIR, 'libonnxruntime_providers_' + n + '.so'), Buffer.alloc(n === 'cuda' ? 2500000 : 1000));
`;

const LDD = `#!/bin/sh
printf '%s\\n' \\
"	linux-vdso.so.1 (0x00007ffd5b3f2000)" \\
"	libcublasLt.so.12 => /usr/local/cuda/lib64/libcublasLt.so.12 (0x00007f1c10000000)" \\
"	libcublas.so.12 => /usr/local/cuda/lib64/libcublas.so.12 (0x00007f1c0a000000)" \\
"	libcudnn.so.9 => not found" \\
"	libcurand.so.10 => /usr/local/cuda/lib64/libcurand.so.10 (0x00007f1c04000000)" \\
"	libcufft.so.11 => /usr/local/cuda/lib64/libcufft.so.11 (0x00007f1bf4000000)" \\
"	libcudart.so.12 => /usr/local/cuda/lib64/libcudart.so.12 (0x00007f1c09c00000)" \\
"	libz.so.1 => not found" \\
"	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1c09a1f000)"
`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'svd-setup-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function script(name: string, body: string, mode = 0o644): string {
  const path = join(dir, name);
  writeFileSync(path, body);
  chmodSync(path, mode);
  return path;
}

describe('svd setup cuda', () => {
  it('offline (fake installer via SVD_ORT_INSTALLER): a clear error with the manual route; CLI exits 2 with one line', async () => {
    const installer = script('install.js', OFFLINE_INSTALLER);
    const lines: string[] = [];
    const err = await setupCuda({
      env: { ...process.env, SVD_ORT_INSTALLER: installer },
      onOutput: (l) => lines.push(l),
    }).catch((e) => e);
    expect(err).toBeInstanceOf(ExecutionProviderError);
    expect(err.message).toContain('could not download the CUDA provider package from NuGet');
    expect(err.message).toContain('ENOTFOUND api.nuget.org');
    expect(err.message).toContain(nugetPackageUrl());
    expect(err.message).toContain(`-d ${ortBinaryDir()}`);
    expect(lines).toContain('Downloading https://api.nuget.org/v3/index.json');

    const cli = await run(process.execPath, [join(ROOT, 'bin/svd.js'), 'setup', 'cuda'], {
      env: { ...process.env, SVD_ORT_INSTALLER: installer },
      cwd: ROOT,
    }).catch((e) => e);
    expect(cli.code).toBe(2);
    const svdLines = cli.stderr.split('\n').filter((l: string) => l.startsWith('svd:'));
    expect(svdLines).toHaveLength(1);
    expect(svdLines[0]).toMatch(/^svd: setup cuda: the installer could not download .*Offline route: /);
    expect(cli.stderr).not.toMatch(/^\s*(installer:)?\s*at .*:\d+:\d+\)?$/m); // no stack trace

    // --json: the failure as JSON on stdout, same exit code
    const json = await run(process.execPath, [join(ROOT, 'bin/svd.js'), 'setup', 'cuda', '--json'], {
      env: { ...process.env, SVD_ORT_INSTALLER: installer },
      cwd: ROOT,
    }).catch((e) => e);
    expect(json.code).toBe(2);
    const answer = JSON.parse(json.stdout);
    expect(answer.ok).toBe(false);
    expect(answer.error.code).toBe('execution_provider_unavailable');
    expect(answer.error.message).toMatch(/^setup cuda: the installer could not download .*Offline route: /s);
  }, 30_000);

  describe('with the real onnxruntime-node installer behind an unreachable proxy', () => {
    let proxy: Server;
    const connects: string[] = [];
    beforeEach(async () => {
      proxy = createServer((sock) =>
        sock.once('data', (d) => {
          connects.push(d.toString().split('\r\n')[0]);
          sock.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
        }),
      );
      await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    });
    afterEach(() => new Promise<void>((r) => proxy.close(() => r())));

    it('fails clearly and leaves no libraries behind', async () => {
      const port = (proxy.address() as { port: number }).port;
      const env: Record<string, string | undefined> = {
        ...process.env,
        HTTPS_PROXY: `http://127.0.0.1:${port}`,
        ONNXRUNTIME_NODE_INSTALL: 'skip',
      };
      for (const k of Object.keys(env))
        if (k.startsWith('GLOBAL_AGENT_') || k === 'SVD_ORT_INSTALLER' || /^no_proxy$/i.test(k)) delete env[k];
      const before = readdirSync(ortBinaryDir()).sort();
      const err = await setupCuda({ env }).catch((e) => e);
      expect(connects).toEqual(['CONNECT api.nuget.org:443 HTTP/1.1']); // the installer ran (despite =skip) and went through our proxy
      expect(err).toBeInstanceOf(ExecutionProviderError);
      expect(err.message).toContain('Proxy server refused');
      expect(err.message).toContain('Offline route');
      expect(readdirSync(ortBinaryDir()).sort()).toEqual(before);
    }, 60_000);
  });

  it('success path: reports where the libraries went, the CUDA/cuDNN they need and what is missing', async () => {
    const installer = script('install-ok.js', OK_INSTALLER);
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'path'));
    script('path/ldd', LDD, 0o755);
    const binDir = join(dir, 'bin');
    const lines: string[] = [];
    const report = await setupCuda({
      env: { PATH: join(dir, 'path'), npm_config_onnxruntime_node_install: 'skip' },
      installerScript: installer,
      binDir,
      onOutput: (l) => lines.push(l),
      probe: async () => [
        {
          provider: 'cuda',
          ok: false,
          error: 'libcudnn.so.9: cannot open shared object file: No such file or directory',
        },
      ],
    });
    expect(lines).toContain('flag=true npmflag=undefined');
    expect(report.files.map((f) => [f.name, f.bytes])).toEqual([
      ['libonnxruntime_providers_cuda.so', 2500000],
      ['libonnxruntime_providers_shared.so', 1000],
      ['libonnxruntime_providers_tensorrt.so', 1000],
    ]);
    expect(report.linkage).toMatchObject({ cudaMajor: 12, cudnnMajor: 9, missing: ['libcudnn.so.9', 'libz.so.1'] });
    const text = formatSetupReport(report).join('\n');
    expect(text).toContain(`CUDA execution provider libraries in ${binDir}:`);
    expect(text).toContain('libonnxruntime_providers_cuda.so  2.5 MB');
    expect(text).toContain('needs CUDA 12 and cuDNN 9; missing: libcudnn.so.9, libz.so.1');
    expect(text).toContain('CUDA session: failed: libcudnn.so.9');
    expect(text).toMatch(/fix: install the missing libraries \(libcudnn\.so\.9, libz\.so\.1\)/);
  });

  it('an installer that exits 0 without the CUDA library is reported, not trusted', async () => {
    const installer = script('install-noop.js', 'console.log("nothing to do")');
    mkdirSync(join(dir, 'bin'));
    const err = await setupCuda({
      env: {},
      installerScript: installer,
      binDir: join(dir, 'bin'),
      probe: async () => [],
    }).catch((e) => e);
    expect(err).toBeInstanceOf(ExecutionProviderError);
    expect(err.message).toContain(`${join(dir, 'bin', 'libonnxruntime_providers_cuda.so')} is missing`);
    expect(existsSync(join(dir, 'bin', 'libonnxruntime_providers_cuda.so'))).toBe(false);
  });
});

describe('ldd parsing', () => {
  it('finds CUDA sonames, their major versions and missing libraries', () => {
    const l = parseLdd(
      '\tlibcudart.so.13 => /x/libcudart.so.13 (0x1)\n\tlibcudnn.so.9 => /y/libcudnn.so.9 (0x2)\n\tlibfoo.so.1 => not found\n',
    );
    expect(l).toEqual({
      cudaLibraries: [
        { soname: 'libcudart.so.13', path: '/x/libcudart.so.13' },
        { soname: 'libcudnn.so.9', path: '/y/libcudnn.so.9' },
      ],
      missing: ['libfoo.so.1'],
      cudaMajor: 13,
      cudnnMajor: 9,
    });
    expect(describeLinkage(parseLdd('\tlibc.so.6 => /lib/libc.so.6 (0x1)\n'))).toBe(
      'CUDA version not visible in its links; all linked libraries found',
    );
  });
});
