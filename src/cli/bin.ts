#!/usr/bin/env node
import { tuneHeapGrowth } from './heap-growth.js';
import { runCli } from './main.js';

const args = process.argv.slice(2);
tuneHeapGrowth(args);
process.exitCode = await runCli(args, {
  env: process.env,
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  setExitCode: () => undefined,
});
