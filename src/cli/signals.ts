/**
 * Resolves on the first SIGINT or SIGTERM. A second one while shutting down means "now" (exit 1), so
 * a stuck drain can always be interrupted.
 */
export async function waitForStopSignal(): Promise<NodeJS.Signals> {
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  const force = () => process.exit(1);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  return signal;
}
