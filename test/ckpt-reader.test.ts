/**
 * The restricted PyTorch checkpoint reader (src/ckpt): tensors and plain containers only. Files are written by
 * our writer (src/ckpt/writer.ts), plus one made by CPython's own pickler (test/fixtures/ckpt/README.md).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openTorchCheckpoint } from '../src/ckpt/reader.js';
import { pyCall, pyOrderedDict, pyTensor, pyTuple, writeTorchCheckpoint, type PyValue } from '../src/ckpt/writer.js';
import { CheckpointError } from '../src/errors.js';
import { readTensorF32 } from '../src/safetensors/reader.js';

const dir = mkdtempSync(join(tmpdir(), 'svd-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const f32 = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);
const stateDict = () =>
  pyOrderedDict([
    ['model.diffusion_model.a.weight', pyTensor('F32', [2, 2], f32(1, 2, 3, 4))],
    ['model.diffusion_model.a.bias', pyTensor('F32', [2], f32(-1, 0.5))],
  ]);

function refusal(path: string): CheckpointError {
  try {
    openTorchCheckpoint(path);
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    return e as CheckpointError;
  }
  throw new Error('expected a refusal');
}

describe('torch checkpoint reader', () => {
  it('locates the tensors of a state dict in place (our writer, plain and ZIP64)', () => {
    for (const zip64 of [false, true]) {
      const path = join(dir, `ok-${zip64}.ckpt`);
      const root = new Map<string, PyValue>([
        ['state_dict', stateDict()],
        ['epoch', 7],
        ['name', 'motionctrl'],
        ['lr', 3e-5],
        ['milestones', [1, pyTuple(2, 3), null, true]],
      ]);
      writeTorchCheckpoint(path, root, { zip64 });
      const ckpt = openTorchCheckpoint(path);
      expect([...ckpt.tensors.keys()]).toEqual(['model.diffusion_model.a.weight', 'model.diffusion_model.a.bias']);
      const w = ckpt.tensors.get('model.diffusion_model.a.weight')!;
      expect(w.shape).toEqual([2, 2]);
      expect(w.offset % 64).toBe(0); // torch's alignment, kept by our writer
      expect(Array.from(readTensorF32(w))).toEqual([1, 2, 3, 4]);
      expect(Array.from(readTensorF32(ckpt.tensors.get('model.diffusion_model.a.bias')!))).toEqual([-1, 0.5]);
      expect((ckpt.root as Map<unknown, unknown>).get('epoch')).toBe(7);
    }
  });

  it("reads CPython's own protocol-2 pickle: memo, BUILD, bytes, big ints, views into shared storages, fp16", () => {
    const ckpt = openTorchCheckpoint('test/fixtures/ckpt/cpython-protocol2.ckpt');
    expect(Array.from(readTensorF32(ckpt.tensors.get('a.weight')!))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(ckpt.tensors.get('a.weight')!.shape).toEqual([2, 3]);
    expect(Array.from(readTensorF32(ckpt.tensors.get('a.bias')!))).toEqual([5, 6]);
    expect(ckpt.tensors.get('b')!.dtype).toBe('F16');
    expect(Array.from(readTensorF32(ckpt.tensors.get('b')!))).toEqual([1, 2, 3, 4]);
    const root = ckpt.root as Map<unknown, unknown>;
    expect(root.get('global_step')).toBe(12345678901);
    expect(Array.from(root.get('blob') as Uint8Array)).toEqual([0, 255]);
    expect(root.get('nested')).toEqual([1, [2, 3], null]);
  });

  it.each([
    ['os', 'system', ['echo pwned']],
    ['builtins', 'eval', ['1+1']],
    ['numpy.core.multiarray', 'scalar', []],
    ['pathlib', 'PosixPath', ['/tmp']],
  ])('refuses a file holding the global %s.%s, naming it, without running anything', (module, name, args) => {
    const path = join(dir, `evil-${module}-${name}.ckpt`);
    writeTorchCheckpoint(
      path,
      new Map<string, PyValue>([
        ['state_dict', stateDict()],
        ['hyper_parameters', pyCall(module, name, args)],
      ]),
    );
    const err = refusal(path);
    expect(err.message).toContain(path);
    expect(err.message).toContain(`${module}.${name}`);
    expect(err.message).toMatch(/only tensors and plain containers/);
  });

  it('refuses a global used as a tensor rebuild function, even inside the state dict', () => {
    const path = join(dir, 'evil-in-state.ckpt');
    writeTorchCheckpoint(
      path,
      new Map<string, PyValue>([
        ['state_dict', pyOrderedDict([['w', pyCall('subprocess', 'check_output', [['id']])]])],
      ]),
    );
    expect(refusal(path).message).toContain('subprocess.check_output');
  });

  it('refuses files that are not torch ZIP checkpoints, and truncated ones', () => {
    const legacy = join(dir, 'legacy.ckpt');
    writeFileSync(
      legacy,
      Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]),
    );
    expect(refusal(legacy).message).toMatch(/torch < 1\.6/);
    const ok = join(dir, 'ok-false.ckpt');
    const cut = join(dir, 'cut.ckpt');
    const bytes = readFileSync(ok);
    writeFileSync(cut, bytes.subarray(0, bytes.length - 40));
    expect(() => openTorchCheckpoint(cut)).toThrow(CheckpointError);
  });
});
