import { describe, expect, it } from 'vitest';
import { ServiceList, type Service } from './services.js';

function recording(names: string[], log: string[]): Service[] {
  return names.map((name) => ({
    name,
    start: async () => {
      await Promise.resolve();
      log.push(`start ${name}`);
    },
    stop: () => {
      log.push(`stop ${name}`);
    },
  }));
}

describe('ServiceList', () => {
  it('starts in order, each after the one before has started, and stops in reverse', async () => {
    const log: string[] = [];
    const list = new ServiceList(recording(['runner', 'streams', 'archive'], log));
    expect(list.names).toEqual(['runner', 'streams', 'archive']);
    await list.start();
    await list.stop();
    expect(log).toEqual([
      'start runner',
      'start streams',
      'start archive',
      'stop archive',
      'stop streams',
      'stop runner',
    ]);
  });

  it('stops every service even when none was started (a start-up that failed part-way)', async () => {
    const log: string[] = [];
    await new ServiceList(recording(['a', 'b'], log)).stop();
    expect(log).toEqual(['stop b', 'stop a']);
  });
});
