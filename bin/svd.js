#!/usr/bin/env node
// In a clone (src/cli/main.ts and tsx are there) the TypeScript sources run through tsx, so a stale dist/ is never
// what runs (nor what the tests test). The published package ships no sources: it runs the compiled dist/.
// SVD_USE_DIST=1 runs dist/ in a clone, to try a build.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'cli', 'main.js');
const source = join(root, 'src', 'cli', 'main.ts');

async function tsxRegister() {
  try {
    return (await import('tsx/esm/api')).register;
  } catch {
    return undefined; // installed without devDependencies
  }
}

let mod;
const register = process.env.SVD_USE_DIST === '1' || !existsSync(source) ? undefined : await tsxRegister();
if (register) {
  register();
  mod = await import(pathToFileURL(source).href);
} else if (existsSync(compiled)) {
  mod = await import(pathToFileURL(compiled).href);
} else {
  console.error(
    `svd: ${compiled} is missing; run \`npm run build\` (or \`npm ci\`, which installs tsx to run the sources)`,
  );
  process.exit(1);
}
process.exitCode = await mod.main(process.argv.slice(2));
