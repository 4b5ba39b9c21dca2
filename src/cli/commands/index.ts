/** Every subcommand's registration function, in help order. Add new command files here. */
import type { Command } from 'commander';
import { registerDoctor } from './doctor.js';
import { registerGenerate } from './generate.js';
import { registerModelsHub } from './models-hub.js';
import { registerModelsLocal } from './models-local.js';
import { registerServe } from './serve.js';
import { registerSetup } from './setup.js';
import { registerQueue } from './queue.js';
import { registerWorker } from './worker.js';

export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [
  registerGenerate,
  registerModelsHub,
  registerModelsLocal,
  registerSetup,
  registerDoctor,
  registerServe,
  registerWorker,
  registerQueue,
];
