/**
 * `svd setup cuda`: installs onnxruntime-node's CUDA execution provider with onnxruntime-node's own
 * installer (docs/runtime.md §1.2). We run `node <ort>/script/install.js` directly with
 * ONNXRUNTIME_NODE_INSTALL=true, because `npm rebuild onnxruntime-node` silently does nothing when
 * package.json's allowScripts denies the package, and because the `=cuda12` flag form is ignored by
 * the 1.30.0 script (its manifest for linux/x64 is cuda12 anyway). Afterwards we report where the
 * libraries went, which CUDA/cuDNN they link against, and whether a CUDA session can be created.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ExecutionProviderError } from '../errors.js';
import { ortBinaryDir } from '../runtime/device.js';
import type { Env } from '../runtime/executables.js';
import { ortPackageDir, ortVersion, probeExecutionProviders, type ProviderProbe } from '../runtime/providers.js';
import { describeLinkage, lddCudaLinkage, type CudaLinkage } from './ldd.js';

export const CUDA_EP_FILES = [
  'libonnxruntime_providers_cuda.so',
  'libonnxruntime_providers_shared.so',
  'libonnxruntime_providers_tensorrt.so',
];

export interface SetupCudaOptions {
  /** Environment for the installer (default process.env). SVD_ORT_INSTALLER overrides the script. */
  env?: Env;
  /** Installer script; default SVD_ORT_INSTALLER, else onnxruntime-node's script/install.js. */
  installerScript?: string;
  /** Where the libraries are expected; default onnxruntime-node's native folder. */
  binDir?: string;
  /** Each line the installer prints on stdout. */
  onOutput?: (line: string) => void;
  timeoutMs?: number;
  /** Confirms the result (default: a real session probe); injectable for tests. */
  probe?: () => Promise<ProviderProbe[]>;
}

export interface SetupCudaReport {
  binDir: string;
  files: Array<{ name: string; path: string; bytes?: number }>;
  /** From ldd on the CUDA provider library; undefined without ldd. */
  linkage?: CudaLinkage;
  /** Whether a CUDA session could be created afterwards, and why not. */
  probe: ProviderProbe;
}

/** The NuGet package the installer downloads; the version must equal onnxruntime-node's. */
export function nugetPackageUrl(version = ortVersion()): string {
  return `https://api.nuget.org/v3-flatcontainer/microsoft.ml.onnxruntime.gpu.linux/${version}/microsoft.ml.onnxruntime.gpu.linux.${version}.nupkg`;
}

/** The air-gapped route, as shell steps. */
export function manualInstallSteps(binDir: string, version = ortVersion()): string {
  return (
    `on a machine with network access download ${nugetPackageUrl(version)} (a zip), copy it here and run ` +
    `\`unzip -j -o <file>.nupkg 'runtimes/linux-x64/native/libonnxruntime_providers_*.so' -d ${binDir}\`, then check with \`svd doctor\``
  );
}

/**
 * Runs the installer and reports the result. Throws ExecutionProviderError with the installer's error,
 * a plain-words diagnosis (offline, proxy, permissions) and the manual route.
 */
export async function setupCuda(options: SetupCudaOptions = {}): Promise<SetupCudaReport> {
  const env = options.env ?? process.env;
  if (`${process.platform}/${process.arch}` !== 'linux/x64') {
    throw new ExecutionProviderError(
      'cuda',
      `setup cuda: onnxruntime-node ships a CUDA execution provider for linux/x64 only (this is ${process.platform}/${process.arch})`,
    );
  }
  const binDir = options.binDir ?? ortBinaryDir();
  try {
    accessSync(binDir, constants.W_OK);
  } catch {
    throw new ExecutionProviderError(
      'cuda',
      `setup cuda: cannot write to ${binDir}; run it as the user who owns node_modules (or fix its permissions)`,
    );
  }
  const script = options.installerScript ?? env.SVD_ORT_INSTALLER ?? join(ortPackageDir(), 'script', 'install.js');
  if (!existsSync(script))
    throw new ExecutionProviderError('cuda', `setup cuda: installer script not found: ${script}`);

  const { code, output } = await runInstaller(script, installerEnv(env, binDir), options);
  if (code !== 0) throw installerFailure(code, output, binDir);

  const files = CUDA_EP_FILES.map((name) => {
    const path = join(binDir, name);
    return { name, path, bytes: existsSync(path) ? statSync(path).size : undefined };
  });
  const cudaLib = files[0];
  if (cudaLib.bytes === undefined) {
    throw new ExecutionProviderError(
      'cuda',
      `setup cuda: the installer finished but ${cudaLib.path} is missing; ${manualInstallSteps(binDir)}`,
    );
  }
  const linkage = await lddCudaLinkage(cudaLib.path, env);
  const probe = (await (options.probe ?? (() => probeExecutionProviders({ providers: ['cuda'] })))())[0] ?? {
    provider: 'cuda',
    ok: false,
    error: 'not probed',
  };
  return { binDir, files, linkage, probe };
}

/**
 * The installer's environment: force a (re)install even when npm config says skip, and hand an
 * HTTPS_PROXY to global-agent, which the installer uses and which only reads GLOBAL_AGENT_* names.
 */
function installerEnv(env: Env, binDir: string): Env {
  const out: Env = { ...env, ONNXRUNTIME_NODE_INSTALL: 'true', SVD_ORT_BIN_DIR: binDir };
  delete out.npm_config_onnxruntime_node_install;
  delete out.ONNXRUNTIME_NODE_INSTALL_CUDA;
  const proxy = env.HTTPS_PROXY ?? env.https_proxy ?? env.HTTP_PROXY ?? env.http_proxy;
  if (proxy && !env.GLOBAL_AGENT_HTTP_PROXY) out.GLOBAL_AGENT_HTTP_PROXY = proxy;
  const noProxy = env.NO_PROXY ?? env.no_proxy;
  if (noProxy && !env.GLOBAL_AGENT_NO_PROXY) out.GLOBAL_AGENT_NO_PROXY = noProxy;
  return out;
}

function runInstaller(
  script: string,
  env: Env,
  options: SetupCudaOptions,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], {
      env: env as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // stdout ("Downloading …") is shown as it comes; stderr (warnings, the installer's stack traces)
    // is kept for the diagnosis only
    let output = '';
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) options.onOutput?.(line);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), options.timeoutMs ?? 15 * 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, output: `${output}\nError: ${err.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (pending) options.onOutput?.(pending);
      resolve({ code, output });
    });
  });
}

const NETWORK_FAILURE =
  /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|Proxy server refused|socket hang up|certificate|Failed to download/i;

function installerFailure(code: number | null, output: string, binDir: string): ExecutionProviderError {
  const errorLine =
    /^\s*(?:\w*Error|error):?\s.*$/m.exec(output)?.[0].trim() ??
    output.trim().split('\n').at(-1) ??
    `exit code ${code}`;
  const diagnosis = NETWORK_FAILURE.test(output)
    ? 'the installer could not download the CUDA provider package from NuGet (this machine looks offline, ' +
      'or a proxy/firewall blocks api.nuget.org; set HTTPS_PROXY if you use a proxy)'
    : `onnxruntime-node's installer failed (exit code ${code})`;
  return new ExecutionProviderError(
    'cuda',
    `setup cuda: ${diagnosis}: ${errorLine}. Offline route: ${manualInstallSteps(binDir)}`,
  );
}

/** Human-readable lines for the CLI. */
export function formatSetupReport(r: SetupCudaReport): string[] {
  const lines = [`CUDA execution provider libraries in ${r.binDir}:`];
  for (const f of r.files)
    lines.push(`  ${f.name}  ${f.bytes === undefined ? 'missing' : `${(f.bytes / 1e6).toFixed(1)} MB`}`);
  if (r.linkage) {
    lines.push(`linkage (ldd): ${describeLinkage(r.linkage)}`);
    for (const lib of r.linkage.cudaLibraries) lines.push(`  ${lib.soname} => ${lib.path ?? 'not found'}`);
  } else {
    lines.push('linkage: ldd not available; check the CUDA/cuDNN versions by hand');
  }
  lines.push(
    r.probe.ok
      ? 'CUDA session: ok (svd generate --device cuda will use the GPU)'
      : `CUDA session: failed: ${r.probe.error}`,
  );
  if (!r.probe.ok && r.linkage?.missing.length) {
    lines.push(
      `fix: install the missing libraries (${r.linkage.missing.join(', ')}) — ` +
        'the CUDA runtime and cuDNN matching the versions above — ' +
        'and make them findable (ldconfig or LD_LIBRARY_PATH), then run `svd doctor`',
    );
  }
  return lines;
}
