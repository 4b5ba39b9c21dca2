import type { ModelMemoryFacts } from '../../src/models/memory.js';

/**
 * Full-size SVD-XT as `buildModel` records it for float32 CPU graphs over its fp16 checkpoint: the bytes each
 * graph computes with. No `weightStorage`: the estimate then assumes the older 'reference' storage; tests of the
 * converted builds add `weightStorage: 'convert'`.
 */
export const SVD_XT_FACTS: ModelMemoryFacts = {
  dtype: 'float32',
  attention: 'mha',
  spatialScale: 8,
  unetChannels: 320,
  unetHeads: 5,
  vaeChannels: 128,
  computeWeightBytes: {
    unet: 5_896_933_288,
    imageEncoder: 2_528_307_200,
    vaeEncoder: 136_654_656,
    vaeDecoder: 254_316_732,
  },
};
