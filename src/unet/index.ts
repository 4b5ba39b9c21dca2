/** The SVD UNet (UNetSpatioTemporalConditionModel) as an ONNX graph built from diffusers safetensors. */
export * from './config.js';
export * from './build.js';
export type { TemporalContextOrder } from './context.js';
export { UNET_IO, defineUnet, unetSpatioTemporal, type UnetGraphOptions, type UnetInputs } from './unet.js';
