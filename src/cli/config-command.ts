import type { Command } from 'commander';
import { configJsonSchema, loadConfigFile } from '../config-file.js';
import { type CliContext, EXIT_OK, println } from './context.js';

/** `inlet config schema` (the config file's JSON Schema) and `inlet config check [FILE]`. */
export function registerConfigCommand(program: Command, ctx: CliContext): void {
  const config = program.command('config').description('the config file (destinations): its schema, a check');
  config
    .command('schema')
    .description("print the config file's JSON Schema (point an editor's $schema at it)")
    .action(() => {
      println(ctx.stdout, JSON.stringify(configJsonSchema(), null, 2));
      ctx.setExitCode(EXIT_OK);
    });
  config
    .command('check')
    .argument('[file]', 'the file (default: INLET_CONFIG, else ./inlet.config.json)')
    .description('validate a config file as serve would at start (exit 2 naming the bad JSON path)')
    .action((file: string | undefined) => {
      const loaded = loadConfigFile(file, ctx.env);
      if (loaded.path === undefined) {
        println(ctx.stdout, 'No config file: neither INLET_CONFIG nor ./inlet.config.json is there.');
      } else {
        const names = loaded.destinations.map((d) => d.name).join(', ') || 'none';
        println(ctx.stdout, `${loaded.path} is valid: destinations ${names}.`);
      }
      ctx.setExitCode(EXIT_OK);
    });
}
