import type { ServiceList } from '../services.js';
import { waitForStopSignal } from './signals.js';

/**
 * Starts the services, keeps the process alive until SIGINT or SIGTERM (their timers do not hold it
 * open), then stops them in reverse. The signal handlers are in place before anything starts.
 */
export async function runUntilStopped(
  services: ServiceList,
  hooks: { running(): void; stopping(signal: NodeJS.Signals): void },
): Promise<void> {
  const stopSignal = waitForStopSignal();
  await services.start();
  const keepAlive = setInterval(() => undefined, 1 << 30);
  hooks.running();
  const signal = await stopSignal;
  hooks.stopping(signal);
  await services.stop();
  clearInterval(keepAlive);
}
