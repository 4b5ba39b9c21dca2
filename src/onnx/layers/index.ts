/** Layer helpers shared by the CLIP, VAE and UNet graph builders. */
export * from './basic.js';
export * from './attention.js';
export * from './resnet.js';
export * from './rearrange.js';
