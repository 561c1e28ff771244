/**
 * Node's arguments for an `inlet serve` the benches start: on loopback, a port of its own choosing,
 * the given database and extra flags; with `cpuProfileDir`, a `--cpu-prof` profile written there as
 * it stops.
 */
export function serveArgs(
  bin: string,
  database: string,
  extra: readonly string[],
  cpuProfileDir: string | undefined,
): string[] {
  return [
    ...(cpuProfileDir === undefined || cpuProfileDir === ''
      ? []
      : ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`]),
    bin,
    'serve',
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--database',
    database,
    ...extra,
  ];
}
