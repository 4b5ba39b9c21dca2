/**
 * The shared `svd models` parent command. Hub subcommands (pull, list, path, rm) and build subcommands
 * (build, import-onnx) live in different files and attach to the same parent through this helper,
 * whatever order they are registered in.
 */
import type { Command } from 'commander';

export function getOrCreateModelsCommand(program: Command): Command {
  const existing = program.commands.find((c) => c.name() === 'models');
  if (existing) return existing;
  return program
    .command('models')
    .description('manage models: download from the Hugging Face Hub, list or remove cached ones, build ONNX graphs');
}
