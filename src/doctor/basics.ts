/** Node, onnxruntime, cached models and the Hub token, for `svd doctor`. */
import { listModels } from '../hub/models.js';
import { formatBytes } from '../hub/progress.js';
import { REGISTRY } from '../hub/registry.js';
import { hubToken, type Env } from '../hub/settings.js';
import type { Check } from './types.js';

/** package.json engines: node >= 20.9. */
export function checkNode(version: string = process.version): Check {
  const [major, minor] = version.replace(/^v/, '').split('.').map(Number);
  const ok = major > 20 || (major === 20 && minor >= 9);
  return ok
    ? { id: 'node', label: 'node', status: 'ok', detail: version }
    : {
        id: 'node',
        label: 'node',
        status: 'fail',
        detail: `${version} is too old; svd-runtime needs Node 20.9 or newer`,
        fix: 'install Node 20 LTS or newer (e.g. `nvm install 20`)',
      };
}

export function checkOnnxruntime(version: () => string): Check {
  try {
    return { id: 'onnxruntime', label: 'onnxruntime', status: 'ok', detail: `onnxruntime-node ${version()}` };
  } catch (err) {
    return {
      id: 'onnxruntime',
      label: 'onnxruntime',
      status: 'fail',
      detail: `onnxruntime-node cannot be loaded: ${(err as Error).message}`,
      fix: '`npm ci`',
    };
  }
}

/** Cached models are a warning when absent: hosted backends work without them. */
export function checkModels(env: Env): Check[] {
  const { cacheDir, models } = listModels(env);
  const cached = models.filter((m) => m.cache);
  const token = hubToken(env);
  const checks: Check[] = [];
  if (!cached.length) {
    checks.push({
      id: 'models',
      label: 'models',
      status: 'warn',
      detail: `none in the Hugging Face cache (${cacheDir})`,
      fix: `${token ? '' : `accept the licence on https://huggingface.co/${REGISTRY[1].repo}, \`export HF_TOKEN=hf_...\`, then `}\`svd models pull svd-xt\``,
    });
  } else {
    for (const m of cached) {
      const name = m.name ?? m.repo;
      checks.push(
        m.cache!.complete
          ? {
              id: `models.${name}`,
              label: `model ${name}`,
              status: 'ok',
              detail: `${formatBytes(m.cache!.sizeBytes)} in ${m.cache!.snapshotDir}`,
            }
          : {
              id: `models.${name}`,
              label: `model ${name}`,
              status: 'warn',
              detail: `incomplete in the cache (${formatBytes(m.cache!.sizeBytes)})`,
              fix: `\`svd models pull ${m.name ?? m.repo}\``,
            },
      );
    }
  }
  checks.push({
    id: 'hf_token',
    label: 'hf token',
    status: 'info',
    detail: token
      ? 'set (used for the gated stabilityai repos; never printed)'
      : 'not set; needed only to download the gated stabilityai repos (HF_TOKEN or `huggingface-cli login`)',
  });
  return checks;
}
