#!/usr/bin/env node
// `unclip` command: runs the built CLI (out/node/cli.js, made by `npm run build:node`, which
// `npm install` and `npm test` run), so nothing compiles TypeScript at run time.
import { existsSync } from 'node:fs';

const built = new URL('../../out/node/cli.js', import.meta.url);
if (!existsSync(built)) {
  console.error('unclip: the command is not built yet; run `npm run build:node` (npm install does it)');
  process.exit(1);
}
const { main } = await import(built.href);
process.exitCode = await main(process.argv.slice(2));
