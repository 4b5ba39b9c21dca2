/**
 * Opening a model directory: parse and validate `model.json`, check the four files exist, open the
 * sessions and check each graph's inputs and output against the contract (names, ranks, dtypes).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ModelFormatError, ModelNotFoundError } from '../errors.js';
import type { HostedSession, ValueInfo } from '../runtime/ortHost.js';
import {
  GRAPH_CONTRACT,
  GRAPH_ROLES,
  MANIFEST_FILE,
  manifestSchema,
  type GraphRole,
  type ModelManifest,
} from './manifest.js';

export interface ModelDirectory {
  dir: string;
  manifest: ModelManifest;
  /** Absolute path of each graph. */
  paths: Record<GraphRole, string>;
}

/** Reads and validates `<dir>/model.json` and checks that the graphs it names exist. */
export function readModelDirectory(dir: string): ModelDirectory {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) {
    throw new ModelNotFoundError(abs, 'model directory not found');
  }
  const manifestPath = join(abs, MANIFEST_FILE);
  if (!existsSync(manifestPath)) {
    throw new ModelNotFoundError(
      manifestPath,
      `missing: a model directory holds ${MANIFEST_FILE} and four ONNX files (see README, "Model directory")`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch (err) {
    throw new ModelFormatError(manifestPath, `not valid JSON (${(err as Error).message})`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ModelFormatError(manifestPath, `invalid manifest:\n  ${problems.join('\n  ')}`);
  }
  const manifest = parsed.data;
  const paths = {} as Record<GraphRole, string>;
  for (const role of GRAPH_ROLES) {
    const path = join(abs, manifest.files[role]);
    if (!existsSync(path)) throw new ModelNotFoundError(path, `missing ${role} graph named in ${MANIFEST_FILE}`);
    paths[role] = path;
  }
  return { dir: abs, manifest, paths };
}

/** Throws ModelFormatError naming the file and each mismatch between a session and its contract. */
export function checkGraphContract(role: GraphRole, session: Pick<HostedSession, 'inputs' | 'outputs' | 'path'>): void {
  const contract = GRAPH_CONTRACT[role];
  const problems: string[] = [];
  const byName = new Map<string, ValueInfo>(session.inputs.map((v) => [v.name, v]));
  for (const [name, rank] of Object.entries(contract.inputs)) {
    const info = byName.get(name);
    if (!info) {
      problems.push(
        `missing input "${name}" (rank ${rank}); the graph has inputs ${session.inputs.map((v) => `"${v.name}"`).join(', ') || 'none'}`,
      );
      continue;
    }
    if (info.shape.length !== rank)
      problems.push(`input "${name}" has rank ${info.shape.length} [${info.shape.join(',')}], expected rank ${rank}`);
    if (!isFloat(info.type)) problems.push(`input "${name}" has type ${info.type}, expected float32 or float16`);
  }
  const optional: Record<string, number> = 'optionalInputs' in contract ? contract.optionalInputs : {};
  for (const info of session.inputs) {
    if (info.name in optional) {
      if (info.shape.length !== optional[info.name])
        problems.push(`input "${info.name}" has rank ${info.shape.length}, expected rank ${optional[info.name]}`);
    } else if (!(info.name in contract.inputs)) problems.push(`unexpected input "${info.name}"`);
  }
  const out = session.outputs.find((v) => v.name === contract.output);
  if (!out)
    problems.push(
      `missing output "${contract.output}"; the graph has outputs ${session.outputs.map((v) => `"${v.name}"`).join(', ')}`,
    );
  else if (!isFloat(out.type))
    problems.push(`output "${contract.output}" has type ${out.type}, expected float32 or float16`);
  if (problems.length) {
    throw new ModelFormatError(session.path, `does not match the ${role} contract:\n  ${problems.join('\n  ')}`);
  }
}

/** The UNet graph has a `camera_pose` input exactly when the manifest says it has MotionCtrl's camera module. */
export function checkCameraInput(session: Pick<HostedSession, 'inputs' | 'path'>, cameraPoseDim: number | null): void {
  const info = session.inputs.find((v) => v.name === 'camera_pose');
  if (cameraPoseDim === null && info) {
    throw new ModelFormatError(session.path, `has a camera_pose input but ${MANIFEST_FILE} sets no unet.cameraPoseDim`);
  }
  if (cameraPoseDim !== null) {
    const last = info?.shape.at(-1);
    if (!info)
      throw new ModelFormatError(
        session.path,
        `${MANIFEST_FILE} sets unet.cameraPoseDim ${cameraPoseDim} but the graph has no camera_pose input`,
      );
    if (typeof last === 'number' && last !== cameraPoseDim) {
      throw new ModelFormatError(
        session.path,
        `camera_pose has ${last} numbers per frame; ${MANIFEST_FILE} says ${cameraPoseDim}`,
      );
    }
  }
}

function isFloat(type: string): boolean {
  return type === 'float32' || type === 'float16';
}
