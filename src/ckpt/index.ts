/** PyTorch ZIP checkpoints (`.ckpt`): a restricted reader (tensors and plain containers only) and a writer. */
export { isTorchCheckpointPath, openTorchCheckpoint, type TorchCheckpoint } from './reader.js';
export { pyCall, pyOrderedDict, pyTensor, pyTuple, writeTorchCheckpoint, type PyValue } from './writer.js';
