/**
 * `svd doctor` with the machine simulated: fake `nvidia-smi`, `ffmpeg` and `ldd` shell scripts on an
 * injected PATH (or FFMPEG_PATH / SVD_NVIDIA_SMI), and an injected provider probe where the real
 * machine (CPU only) cannot provide the answer.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatDoctorReport, runDoctor, type DoctorOptions } from '../src/doctor/doctor.js';
import { parseEncoders } from '../src/doctor/ffmpeg.js';
import { defaultDecodeChunkSize, gpuFreeMemoryMiB, parseGpuCsv } from '../src/runtime/gpu.js';
import { probeExecutionProviders, tinyAddModel } from '../src/runtime/providers.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');

const NVIDIA_SMI = `#!/bin/sh
case "$*" in
  *--query-gpu=*) printf '%s\\n' "0, NVIDIA H100 80GB HBM3, 81559, 80261, 550.54.15" ;;
  *) printf '%s\\n' "NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4" ;;
esac
`;

function ffmpegScript(version: string, encoders: string[]): string {
  const lines = [
    'Encoders:',
    ' V..... = Video',
    ' A..... = Audio',
    ' S..... = Subtitle',
    ' .F.... = Frame-level multithreading',
    ' ------',
    ' V....D a64multi             Multicolor charset for Commodore 64 (codec a64_multi)',
    ...encoders.map((e) => ` V....D ${e.padEnd(20)} ${e} encoder`),
    ' A....D aac                  AAC (Advanced Audio Coding)',
  ];
  return `#!/bin/sh
case "$*" in
  *-version*) printf '%s\\n' "ffmpeg version ${version} Copyright (c) 2000-2023 the FFmpeg developers" "built with gcc 12 (Debian 12.2.0-14)" ;;
  *-encoders*) printf '%s\\n' ${lines.map((l) => `'${l}'`).join(' ')} ;;
  *) exit 1 ;;
esac
`;
}

const LDD_MISSING_CUDNN = `#!/bin/sh
printf '%s\\n' \\
"	linux-vdso.so.1 (0x00007ffd5b3f2000)" \\
"	libonnxruntime_providers_shared.so => /ort/libonnxruntime_providers_shared.so (0x00007f1c2a000000)" \\
"	libcublasLt.so.12 => /usr/local/cuda/lib64/libcublasLt.so.12 (0x00007f1c10000000)" \\
"	libcublas.so.12 => /usr/local/cuda/lib64/libcublas.so.12 (0x00007f1c0a000000)" \\
"	libcudnn.so.9 => not found" \\
"	libcudart.so.12 => /usr/local/cuda/lib64/libcudart.so.12 (0x00007f1c09c00000)" \\
"	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1c09a1f000)"
`;

let dir: string;
function fake(name: string, body: string, sub = 'bin'): string {
  mkdirSync(join(dir, sub), { recursive: true });
  const path = join(dir, sub, name);
  writeFileSync(path, body);
  chmodSync(path, 0o755);
  return path;
}
const allProvidersOk = async () => [
  { provider: 'cpu', ok: true },
  { provider: 'cuda', ok: true },
];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'svd-doctor-'));
  mkdirSync(join(dir, 'empty'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('svd doctor', () => {
  it('CLI: without GPU (a warning: CPU works) and without ffmpeg (a problem) prints both with fixes, exits 1', async () => {
    const env = { PATH: join(dir, 'empty'), HOME: dir, HF_HUB_CACHE: join(dir, 'cache'), SVD_BUNDLED_FFMPEG: '0' };
    const err = await run(process.execPath, [join(ROOT, 'bin/svd.js'), 'doctor'], { env, cwd: ROOT }).catch((e) => e);
    expect(err.code).toBe(1);
    const out: string = err.stdout;
    expect(out).toMatch(
      /warn\s+gpu\s+no NVIDIA GPU found \(generation runs on CPU\): nvidia-smi not found on PATH\n\s+fix: install the NVIDIA driver/,
    );
    expect(out).toMatch(/FAIL\s+ffmpeg\s+not found.*\n\s+fix: install ffmpeg: `sudo apt-get install ffmpeg`/);
    expect(out).toMatch(/ok\s+provider cpu\s+creates a session and runs/);
    expect(out).toContain('1 problem, ');
  }, 30_000);

  it('CLI: a CPU-only machine without a system ffmpeg works (npm ffmpeg build), so it exits 0', async () => {
    const env = { PATH: join(dir, 'empty'), HOME: dir, HF_HUB_CACHE: join(dir, 'cache') };
    const { stdout } = await run(process.execPath, [join(ROOT, 'bin/svd.js'), 'doctor'], { env, cwd: ROOT });
    expect(stdout).toMatch(/warn\s+gpu\s+no NVIDIA GPU found \(generation runs on CPU\)/);
    expect(stdout).toMatch(/ok\s+ffmpeg\s+.*@ffmpeg-installer.*the npm build from @ffmpeg-installer\)/);
    for (const e of ['libx264', 'libvpx-vp9', 'gif']) expect(stdout).toMatch(new RegExp(`ok\\s+encoder ${e}`));
    expect(stdout).toMatch(/no problems, \d+ warnings?\n$/);
  }, 30_000);

  it('with fakes for everything it reports no problem (exit 0)', async () => {
    fake('nvidia-smi', NVIDIA_SMI);
    fake('ffmpeg', ffmpegScript('6.1.1', ['gif', 'libx264', 'libvpx-vp9']));
    const options: DoctorOptions = {
      env: { PATH: join(dir, 'bin'), HOME: dir, HF_HUB_CACHE: join(dir, 'cache'), HF_TOKEN: 'hf_x' },
      probeProviders: allProvidersOk,
      cudaLibrary: () => '/ort/libonnxruntime_providers_cuda.so',
    };
    const report = await runDoctor(options);
    expect(report.problems).toBe(0);
    expect(report.ok).toBe(true);
    const byId = Object.fromEntries(report.checks.map((c) => [c.id, c]));
    expect(byId['gpu.0']).toMatchObject({ status: 'ok' });
    expect(byId['gpu.0'].detail).toContain('NVIDIA H100 80GB HBM3, 78.4 GiB free of 79.6 GiB, driver 550.54.15');
    expect(byId['provider.cuda'].status).toBe('ok');
    expect(byId.ffmpeg.detail).toContain(`6.1.1 (${join(dir, 'bin', 'ffmpeg')})`);
    for (const e of ['libx264', 'libvpx-vp9', 'gif']) expect(byId[`ffmpeg.encoder.${e}`].status).toBe('ok');
    // no model cached is only a warning, with the pull command as its fix
    expect(byId.models).toMatchObject({ status: 'warn' });
    expect(byId.models.fix).toContain('svd models pull svd-xt');
    expect(formatDoctorReport(report)).toMatch(/no problems, 1 warning\n$/);
  });

  it('CLI --json: GPU present but the CUDA provider not installed → the fix is `svd setup cuda`', async () => {
    fake('nvidia-smi', NVIDIA_SMI, 'smi');
    const ffmpeg = fake('ffmpeg', ffmpegScript('6.1.1', ['gif', 'libx264', 'libvpx-vp9']), 'ff');
    const env = {
      PATH: join(dir, 'empty'),
      HOME: dir,
      HF_HUB_CACHE: join(dir, 'cache'),
      FFMPEG_PATH: ffmpeg,
      SVD_NVIDIA_SMI: join(dir, 'smi', 'nvidia-smi'),
    };
    const err = await run(process.execPath, [join(ROOT, 'bin/svd.js'), 'doctor', '--json'], { env, cwd: ROOT }).catch(
      (e) => e,
    );
    expect(err.code).toBe(1); // this machine has no CUDA provider library
    const report = JSON.parse(err.stdout);
    const failed = report.checks.filter((c: { status: string }) => c.status === 'fail');
    expect(failed.map((c: { id: string }) => c.id)).toEqual(['provider.cuda']);
    expect(failed[0].fix).toBe('`svd setup cuda`');
    expect(report.checks.find((c: { id: string }) => c.id === 'gpu.0').detail).toContain('NVIDIA H100');
  }, 30_000);

  it('CUDA provider installed but a library missing → names it and the cuDNN version to install', async () => {
    fake('nvidia-smi', NVIDIA_SMI);
    fake('ffmpeg', ffmpegScript('6.1.1', ['gif', 'libx264', 'libvpx-vp9']));
    fake('ldd', LDD_MISSING_CUDNN);
    const report = await runDoctor({
      env: { PATH: join(dir, 'bin'), HOME: dir, HF_HUB_CACHE: join(dir, 'cache') },
      probeProviders: async () => [
        { provider: 'cpu', ok: true },
        { provider: 'cuda', ok: false, error: 'libcudnn.so.9: cannot open shared object file' },
      ],
      cudaLibrary: () => '/ort/libonnxruntime_providers_cuda.so',
    });
    const cuda = report.checks.find((c) => c.id === 'provider.cuda')!;
    expect(cuda.status).toBe('fail');
    expect(cuda.detail).toContain('missing libcudnn.so.9');
    expect(cuda.fix).toContain('CUDA 12 runtime and cuDNN 9');
    expect(report.problems).toBe(1);
  });

  it('FFMPEG_PATH wins over PATH; a broken FFMPEG_PATH is named; a missing libx264 is a problem, missing vp9 a warning', async () => {
    fake('ffmpeg', ffmpegScript('4.4.2', ['gif', 'libx264', 'libvpx-vp9']));
    const custom = fake('ffmpeg', ffmpegScript('7.0', ['gif']), 'custom');
    const base = { PATH: join(dir, 'bin'), HOME: dir, HF_HUB_CACHE: join(dir, 'cache') };
    const options = { probeProviders: allProvidersOk, cudaLibrary: () => undefined };

    const report = await runDoctor({ ...options, env: { ...base, FFMPEG_PATH: custom } });
    const byId = Object.fromEntries(report.checks.map((c) => [c.id, c]));
    expect(byId.ffmpeg.detail).toContain('7.0');
    expect(byId['ffmpeg.encoder.libx264'].status).toBe('fail');
    expect(byId['ffmpeg.encoder.libx264'].fix).toContain('--format webm, gif or png');
    expect(byId['ffmpeg.encoder.libvpx-vp9'].status).toBe('warn');
    expect(byId['ffmpeg.encoder.gif'].status).toBe('ok');

    const broken = await runDoctor({ ...options, env: { ...base, FFMPEG_PATH: join(dir, 'nope', 'ffmpeg') } });
    const ff = broken.checks.find((c) => c.id === 'ffmpeg')!;
    expect(ff.status).toBe('fail');
    expect(ff.detail).toContain(join(dir, 'nope', 'ffmpeg'));
    expect(ff.fix).toContain('FFMPEG_PATH');
  });

  it('parses real-looking encoder lists', () => {
    const names = parseEncoders(
      ' V..... = Video\n ------\n V....D libx264              libx264 H.264\n VF...D libvpx-vp9  VP9\n A....D aac   AAC\n',
    );
    expect([...names].sort()).toEqual(['aac', 'libvpx-vp9', 'libx264']);
  });
});

describe('GPU memory helpers', () => {
  it('reads free memory from nvidia-smi, null when the device or nvidia-smi is missing', async () => {
    const smi = fake('nvidia-smi', NVIDIA_SMI);
    expect(await gpuFreeMemoryMiB(0, { SVD_NVIDIA_SMI: smi })).toBe(80261);
    expect(await gpuFreeMemoryMiB(1, { SVD_NVIDIA_SMI: smi })).toBeNull();
    expect(await gpuFreeMemoryMiB(0, { PATH: join(dir, 'empty') })).toBeNull();
    const failing = fake(
      'nvidia-smi-broken',
      '#!/bin/sh\necho "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver." ; exit 9\n',
    );
    expect(await gpuFreeMemoryMiB(0, { SVD_NVIDIA_SMI: failing })).toBeNull();
  });

  it('parses nvidia-smi CSV, including a name with a comma and several GPUs', () => {
    const gpus = parseGpuCsv(
      '0, NVIDIA A100-SXM4-40GB, 40960, 40000, 535.104.05\n1, Odd, Name GPU, 24576, 1000, 535.104.05\n',
    );
    expect(gpus).toEqual([
      {
        index: 0,
        name: 'NVIDIA A100-SXM4-40GB',
        memoryTotalMiB: 40960,
        memoryFreeMiB: 40000,
        driverVersion: '535.104.05',
      },
      { index: 1, name: 'Odd, Name GPU', memoryTotalMiB: 24576, memoryFreeMiB: 1000, driverVersion: '535.104.05' },
    ]);
  });

  it('decode chunk: the documented budget (80 % of free − 1 GiB) over 1.5 KiB per pixel per frame in fp16', () => {
    const perFrameMiB = (1024 * 576 * 2 * 128 * 6) / 2 ** 20;
    const freeFor = (frames: number) => (1024 + frames * perFrameMiB) / 0.8;
    expect(defaultDecodeChunkSize(freeFor(10), 1024, 576)).toBe(10);
    expect(defaultDecodeChunkSize(freeFor(10) - 1, 1024, 576)).toBe(9);
    expect(defaultDecodeChunkSize(freeFor(10), 1024, 576, 'float32')).toBe(5);
    expect(defaultDecodeChunkSize(freeFor(10), 512, 288)).toBe(40);
    expect(defaultDecodeChunkSize(500, 1024, 576)).toBe(1);
    expect(defaultDecodeChunkSize(1e7, 1024, 576)).toBe(128);
  });
});

describe('execution-provider probe', () => {
  it('creates a CPU session from the hand-written one-node model and reports failures with onnxruntime text', async () => {
    expect(tinyAddModel().length).toBeLessThan(100);
    const probes = await probeExecutionProviders({ providers: ['cpu', 'no-such-ep'] });
    expect(probes[0]).toEqual({ provider: 'cpu', ok: true });
    expect(probes[1].ok).toBe(false);
    expect(probes[1].error).toMatch(/no-such-ep/);
  }, 30_000);
});
