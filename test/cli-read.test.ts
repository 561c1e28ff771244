import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInlet } from '../src/inlet.js';
import { openStore } from '../src/store/index.js';
import { prediction, quietLogger, SECRET, signedHeaders, tempDir, testConfig } from './helpers.js';
import { runCli, startServe, stop } from './process-helpers.js';

describe('inlet predictions / events (reading the database)', () => {
  const tmp = tempDir();
  const db = join(tmp.dir, 'read.db');
  const ids = { done: 'pred_cli_done', running: 'pred_cli_running' };
  const eventId = 'msg_cli_event';

  beforeAll(async () => {
    const inlet = createInlet(testConfig(), await openStore(`sqlite:${db}`, { mode: 'serve' }), quietLogger);
    const send = async (body: Record<string, unknown>, id?: string) => {
      const text = JSON.stringify(body);
      const res = await inlet.app.inject({
        method: 'POST',
        url: '/replicate-webhook',
        payload: text,
        headers: signedHeaders(text, id ? { id } : {}),
      });
      expect(res.statusCode).toBe(200);
    };
    await send(prediction({ id: ids.running, model: 'acme/b', status: 'processing' }));
    await send(prediction({ id: ids.done, model: 'acme/a', status: 'starting' }));
    await send(prediction({ id: ids.done, model: 'acme/a', status: 'succeeded', output: ['ok'] }), eventId);
    await inlet.close();
  });
  afterAll(() => tmp.cleanup());

  it('lists predictions as a table, filtered, and as JSON', async () => {
    const table = await runCli(['predictions', '--database', db]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/ID\s+STATUS\s+MODEL/);
    expect(table.stdout).toContain(ids.done);
    expect(table.stdout).toContain(ids.running);

    const filtered = await runCli(['predictions', '--status', 'succeeded', '--database', db]);
    expect(filtered.stdout).toContain(ids.done);
    expect(filtered.stdout).not.toContain(ids.running);

    const byModel = await runCli(['predictions', 'list', '--model', 'acme/b', '--json'], {
      DATABASE_URL: `sqlite:${db}`,
    });
    const json = JSON.parse(byModel.stdout);
    expect(json.data.map((p: { id: string }) => p.id)).toEqual([ids.running]);
    expect(json.data[0]).toMatchObject({ status: 'processing', event_count: 1, kind: 'prediction' });

    const first = JSON.parse(
      (await runCli(['predictions', '--limit', '1', '--json', '--database', db])).stdout,
    );
    expect(first.data).toHaveLength(1);
    expect(first.next_cursor).toEqual(expect.any(String));
    const second = JSON.parse(
      (
        await runCli([
          'predictions',
          '--limit',
          '1',
          '--json',
          '--cursor',
          first.next_cursor,
          '--database',
          db,
        ])
      ).stdout,
    );
    expect([first.data[0].id, second.data[0].id].sort()).toEqual([ids.done, ids.running].sort());
    expect(second.next_cursor).toBeNull();
    const bad = await runCli(['predictions', '--cursor', 'nope!', '--database', db]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--cursor');
  });

  it('shows one prediction and one event', async () => {
    const show = await runCli(['predictions', 'show', ids.done, '--json', '--database', db]);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({
      id: ids.done,
      status: 'succeeded',
      output: ['ok'],
      event_count: 2,
    });
    const readable = await runCli(['predictions', 'show', ids.done, '--database', db]);
    expect(readable.stdout).toContain(eventId);

    const event = await runCli(['events', 'show', eventId, '--json', '--database', db]);
    expect(event.code).toBe(0);
    const parsed = JSON.parse(event.stdout);
    expect(parsed).toMatchObject({
      id: eventId,
      prediction_id: ids.done,
      status: 'succeeded',
      scheme: 'standard',
    });
    expect(parsed.headers['webhook-signature']).toBe('[redacted]');
    expect(JSON.parse(parsed.body)).toMatchObject({ id: ids.done });

    const missing = await runCli(['predictions', 'show', 'nope', '--database', db]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope');
  });

  it('never creates a database: exits 2 saying where it looked', async () => {
    const absent = join(tmp.dir, 'absent', 'inlet.db');
    for (const args of [['predictions'], ['predictions', 'show', 'x'], ['events', 'show', 'x']]) {
      const res = await runCli([...args, '--database', absent]);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toContain(absent);
    }
    expect(existsSync(join(tmp.dir, 'absent'))).toBe(false);
    const cwdDefault = await runCli(['predictions'], {}, { cwd: tmp.dir });
    expect(cwdDefault.code).toBe(2);
    expect(cwdDefault.stderr).toContain(join(tmp.dir, 'data', 'inlet.db'));
    expect(existsSync(join(tmp.dir, 'data'))).toBe(false);
  });

  it('exits 2 on a bad --limit or --status, naming the flag', async () => {
    const res = await runCli(['predictions', '--limit', '0', '--database', db]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--limit');
    const res2 = await runCli(['predictions', '--limit', 'abc', '--database', db]);
    expect(res2.code).toBe(2);
    const res3 = await runCli(['predictions', '--bogus', '--database', db]);
    expect(res3.code).toBe(2);
    const unknown = await runCli(['predictions', '--status', 'succeeded,bogus', '--database', db]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--status: unknown status "bogus"');
    expect(unknown.stderr).toContain('starting, processing, succeeded, failed, canceled, aborted');
  });

  it('says when a filter matches nothing, and how many predictions are stored', async () => {
    const none = await runCli(['predictions', '--status', 'failed', '--model', 'acme/a', '--database', db]);
    expect(none.code).toBe(0);
    expect(none.stdout.trim()).toBe(
      'No predictions match status=failed, model=acme/a; 2 predictions stored.',
    );
  });

  it('shows the list flags in `inlet predictions --help`', async () => {
    const help = await runCli(['predictions', '--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--status', '--model', '--search', '--limit', '--cursor', '--json', '--database']) {
      expect(help.stdout).toContain(flag);
    }
  });

  it('prints the same through a running Inlet (--url / INLET_URL, --token) as from the database', async () => {
    const server = await startServe(['--database', db], {
      REPLICATE_WEBHOOK_SECRET: SECRET,
      INLET_ADMIN_TOKEN: 'tok',
    });
    try {
      const verbs = [
        ['predictions'],
        ['predictions', '--json'],
        ['predictions', '--limit', '1'],
        ['predictions', '--status', 'failed', '--model', 'acme/a'],
        ['predictions', 'show', ids.done],
        ['predictions', 'show', ids.done, '--json'],
        ['events', 'show', eventId],
        ['events', 'show', eventId, '--json'],
      ];
      for (const verb of verbs) {
        const local = await runCli([...verb, '--database', db]);
        const remote = await runCli([...verb, '--url', server.base, '--token', 'tok']);
        expect({ verb, ...remote }).toEqual({ verb, ...local });
        expect(local.code).toBe(0);
      }
      const viaEnv = await runCli(['predictions'], { INLET_URL: server.base, INLET_ADMIN_TOKEN: 'tok' });
      expect(viaEnv.stdout).toBe((await runCli(['predictions', '--database', db])).stdout);

      const missing = await runCli([
        'predictions',
        'show',
        'pred_nope',
        '--url',
        server.base,
        '--token',
        'tok',
      ]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(`No prediction "pred_nope" in ${server.base}`);
      const refused = await runCli(['predictions', '--url', server.base]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('pass --token or set INLET_ADMIN_TOKEN');
    } finally {
      await stop(server);
    }
    const down = await runCli(['predictions', '--url', server.base, '--token', 'tok']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`Cannot reach Inlet at ${server.base}`);
  });
});
