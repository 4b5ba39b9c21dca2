/**
 * Hub settings read from the environment, with the same names and precedence as Python's
 * huggingface_hub (docs/runtime.md §7), so a cache and a token set up for diffusers are used as they are.
 * Every function takes the environment as a parameter so tests can inject one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { HubError } from '../errors.js';

export type Env = Record<string, string | undefined>;

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubSettings {
  /** Base URL without a trailing slash, e.g. https://huggingface.co. */
  endpoint: string;
  /** The hub cache root holding `models--org--name` folders. */
  cacheDir: string;
  /** Bearer token or undefined; never printed. */
  token: string | undefined;
  /** HF_HUB_OFFLINE: no network at all, the cache only. */
  offline: boolean;
}

/** Reads the settings; `token` overrides the environment (the `--token` flag). */
export function hubSettings(env: Env = process.env, token?: string): HubSettings {
  const endpoint = (env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(endpoint)) {
    throw new HubError(
      'hub_unreachable',
      '',
      `HF_ENDPOINT=${JSON.stringify(env.HF_ENDPOINT)} is not an http(s) URL (default ${DEFAULT_ENDPOINT})`,
    );
  }
  return {
    endpoint,
    cacheDir: hubCacheDir(env),
    token: token?.trim() || hubToken(env),
    offline: isTruthy(env.HF_HUB_OFFLINE),
  };
}

/** HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > $HF_HOME/hub > $XDG_CACHE_HOME/huggingface/hub > ~/.cache/huggingface/hub. */
export function hubCacheDir(env: Env = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  return join(hfHome(env), 'hub');
}

function hfHome(env: Env): string {
  if (env.HF_HOME) return env.HF_HOME;
  const xdg = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(xdg, 'huggingface');
}

/**
 * HF_TOKEN, then the legacy HUGGING_FACE_HUB_TOKEN, then the file written by `huggingface-cli login`
 * (HF_TOKEN_PATH or $HF_HOME/token).
 */
export function hubToken(env: Env = process.env): string | undefined {
  const fromEnv = env.HF_TOKEN?.trim() || env.HUGGING_FACE_HUB_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  const file = env.HF_TOKEN_PATH || join(hfHome(env), 'token');
  try {
    if (existsSync(file)) return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    // an unreadable token file is the same as none
  }
  return undefined;
}

function isTruthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}
