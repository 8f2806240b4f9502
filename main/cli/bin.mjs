#!/usr/bin/env node
// `unclip` command: register tsx so the TypeScript sources run as they are, then hand over to index.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./index.ts');
process.exitCode = await main(process.argv.slice(2));
