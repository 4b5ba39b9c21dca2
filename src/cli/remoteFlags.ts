/**
 * CLI flags for choosing and configuring a backend (`--backend`, `--api-key`, `--base-url`, `--remote-model`
 * and the provider-only fields). Values are only parsed here; `parseRemoteParams` validates them, and
 * `withRemoteFlagNames` renames `remote.prompt` in its errors to the `--prompt` the user typed.
 */
import type { Command } from 'commander';
import { InvalidRequestError } from '../errors.js';
import {
  PIXVERSE_QUALITIES,
  parseRemoteParams,
  type RemoteBackendOptions,
  type RemoteParams,
} from '../backends/options.js';
import { BACKEND_CHOICES } from '../backends/select.js';

interface RemoteFlag {
  /** Option key commander produces (camelCase of the long flag). */
  key: string;
  flag: string;
  help: string;
  /** `remote.<field>` this flag fills, or a backend option. */
  target:
    | `remote.${keyof RemoteParams}`
    | 'backend'
    | 'apiKey'
    | 'baseUrl'
    | 'deadlineMs'
    | 'allowPrivateUrls'
    | 'maxDownloadBytes';
  kind: 'string' | 'number' | 'boolean';
}

export const REMOTE_FLAGS: RemoteFlag[] = [
  {
    key: 'backend',
    flag: '--backend <name>',
    help: `where to run: ${BACKEND_CHOICES.join(' | ')} (default auto: local with a GPU and the model, else the first provider with a key)`,
    target: 'backend',
    kind: 'string',
  },
  {
    key: 'apiKey',
    flag: '--api-key <key>',
    help: 'API key of the chosen provider (default: SEGMIND_API_KEY, FAL_KEY, VOLTAGE_API_KEY, OPENAI_API_KEY)',
    target: 'apiKey',
    kind: 'string',
  },
  {
    key: 'baseUrl',
    flag: '--base-url <url>',
    help: 'provider base URL, e.g. a compatible server or proxy',
    target: 'baseUrl',
    kind: 'string',
  },
  {
    key: 'remoteModel',
    flag: '--remote-model <id>',
    help:
      'provider endpoint or model: svd | motionctrl-svd | pixverse-image2video (segmind), ' +
      'fal-ai/stable-video | fal-ai/fast-svd-lcm | fal-ai/svd (fal), a model name (openai, voltage)',
    target: 'remote.model',
    kind: 'string',
  },
  {
    key: 'timeout',
    flag: '--timeout <seconds>',
    help: 'give up on a hosted job after this long (default 900)',
    target: 'deadlineMs',
    kind: 'number',
  },
  {
    key: 'allowPrivateUrls',
    flag: '--allow-private-urls',
    help: 'let result URLs a provider returns point at loopback or private addresses (local mocks)',
    target: 'allowPrivateUrls',
    kind: 'boolean',
  },
  {
    key: 'maxDownloadBytes',
    flag: '--max-download-bytes <n>',
    help: 'largest result video accepted from a provider (default: all frames as raw RGB + 64 MiB)',
    target: 'maxDownloadBytes',
    kind: 'number',
  },
  {
    key: 'prompt',
    flag: '--prompt <text>',
    help: 'text prompt (segmind pixverse, voltage, openai)',
    target: 'remote.prompt',
    kind: 'string',
  },
  {
    key: 'negativePrompt',
    flag: '--negative-prompt <text>',
    help: 'what to avoid (segmind pixverse)',
    target: 'remote.negativePrompt',
    kind: 'string',
  },
  {
    key: 'quality',
    flag: '--quality <q>',
    help: `video quality (segmind pixverse): ${PIXVERSE_QUALITIES.join(' | ')}`,
    target: 'remote.quality',
    kind: 'string',
  },
  {
    key: 'motionMode',
    flag: '--motion-mode <mode>',
    help: 'normal | fast (segmind pixverse; fast only at 5 s and below 1080p)',
    target: 'remote.motionMode',
    kind: 'string',
  },
  {
    key: 'style',
    flag: '--style <style>',
    help: 'anime | 3d_animation | clay | comic | cyberpunk (segmind pixverse)',
    target: 'remote.style',
    kind: 'string',
  },
  {
    key: 'controlMaps',
    flag: '--control-maps <archive>',
    help: 'zip of one depth map per frame (fal-ai/svd)',
    target: 'remote.controlMaps',
    kind: 'string',
  },
];

const FLAG_OF = new Map(REMOTE_FLAGS.map((f) => [f.target as string, /--[a-z-]+/.exec(f.flag)![0]]));

/** Registers the backend flags on a command. */
export function addRemoteFlags(cmd: Command): Command {
  for (const f of REMOTE_FLAGS) cmd.option(f.flag, f.help);
  return cmd;
}

export interface BackendFlags {
  backend?: string;
  options: RemoteBackendOptions;
}

/** Parsed commander options → backend name and backend options (remote fields validated). */
export function remoteOptionsFromFlags(opts: Record<string, unknown>): BackendFlags {
  const out: BackendFlags = { options: {} };
  const remote: Record<string, unknown> = {};
  for (const f of REMOTE_FLAGS) {
    const raw = opts[f.key];
    if (raw === undefined) continue;
    const value = f.kind === 'number' ? parseNumber(raw) : raw;
    if (f.target === 'backend') out.backend = String(value);
    else if (f.target === 'apiKey') out.options.apiKey = String(value);
    else if (f.target === 'baseUrl') out.options.baseUrl = String(value);
    else if (f.target === 'allowPrivateUrls') out.options.allowPrivateUrls = value === true;
    else if (f.target === 'maxDownloadBytes') {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1024) {
        throw new InvalidRequestError([
          { field: '--max-download-bytes', value: raw, message: 'must be a whole number of bytes, at least 1024' },
        ]);
      }
      out.options.maxDownloadBytes = value;
    } else if (f.target === 'deadlineMs') {
      if (typeof value !== 'number' || !(value > 0))
        throw new InvalidRequestError([
          { field: '--timeout', value: raw, message: 'must be a positive number of seconds' },
        ]);
      out.options.deadlineMs = value * 1000;
    } else remote[f.target.slice('remote.'.length)] = value;
  }
  if (Object.keys(remote).length) {
    try {
      out.options.remote = parseRemoteParams(remote);
    } catch (err) {
      throw withRemoteFlagNames(err);
    }
  }
  return out;
}

/** Renames `remote.*` fields in an InvalidRequestError to the CLI flags (`remote.maskImage` → `--mask`). */
export function withRemoteFlagNames(err: unknown): unknown {
  if (!(err instanceof InvalidRequestError)) return err;
  return new InvalidRequestError(err.issues.map((i) => ({ ...i, field: FLAG_OF.get(i.field) ?? i.field })));
}

function parseNumber(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  const n = Number(raw);
  return raw.trim() === '' || Number.isNaN(n) ? raw : n;
}
