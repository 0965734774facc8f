#!/usr/bin/env node
// The `pixshare` command (package.json "bin"): the TypeScript sources run through tsx, as `npm start` runs the server.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
