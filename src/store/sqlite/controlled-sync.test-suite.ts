import type { SyncFunction } from './wal-sync.js';

/** A fake fsync/fdatasync for WalSync and WalCheckpointer tests: its calls finish only when the test says so. */
export function controlledSync() {
  const calls: ((error: NodeJS.ErrnoException | null) => void)[] = [];
  const sync: SyncFunction = (_fd, done) => {
    calls.push(done);
  };
  return { sync, calls };
}
