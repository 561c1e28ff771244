import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInlet, type Inlet } from '../src/inlet.js';
import { jsonText } from '../src/json-text.js';
import { openStore } from '../src/store/index.js';
import {
  postWebhook,
  prediction,
  quietLogger,
  SECRET,
  signedHeaders,
  tempDir,
  testConfig,
} from './helpers.js';
import { runCli, startServe, stop } from './process-helpers.js';

/**
 * Bodies that are valid JSON, signed and stored, but hard to show: nested far deeper than
 * JSON.stringify can write, or with fields named like Object.prototype's. The views show them exactly.
 */

const DEPTH = 100_000;
const DEEP_OUTPUT = `${'['.repeat(DEPTH)}"bottom"${']'.repeat(DEPTH)}`;
const deep = prediction({ status: 'succeeded', output: 0 });
const DEEP_BODY = JSON.stringify(deep).replace('"output":0', `"output":${DEEP_OUTPUT}`);
const DEEP_EVENT = 'msg_hostile_deep';

// Own properties named __proto__ and constructor: only JSON.parse makes them, so the body is written by hand.
const proto = prediction({ status: 'succeeded', output: ['ok'] });
const PROTO_FIELDS = {
  input: '{"__proto__":{"polluted":true},"constructor":"c","text":"hello"}',
  output: '{"__proto__":["o"],"constructor":{"prototype":1}}',
  metrics: '{"__proto__":1.5,"constructor":2,"predict_time":0.1}',
};
const PROTO_BODY = JSON.stringify(proto)
  .replace('"input":{"text":"hello"}', `"input":${PROTO_FIELDS.input}`)
  .replace('"output":["ok"]', `"output":${PROTO_FIELDS.output}`)
  .replace('"metrics":{}', `"metrics":${PROTO_FIELDS.metrics}`)
  .replace(/}$/, ',"__proto__":{"top":1},"constructor":"top","toString":"t","hasOwnProperty":0}');
const PROTO_EVENT = 'msg_hostile_proto';

/** The text of a field of the JSON `text` as it stands there (JSON.parse keeps `__proto__` keys). */
function field(text: string, name: string): string {
  return jsonText((JSON.parse(text) as Record<string, unknown>)[name]);
}

describe('hostile but valid bodies, end to end on SQLite', () => {
  const tmp = tempDir();
  const db = join(tmp.dir, 'hostile.db');
  let inlet: Inlet;

  beforeAll(async () => {
    inlet = createInlet(testConfig(), await openStore(`sqlite:${db}`, { mode: 'serve' }), quietLogger);
    expect(PROTO_BODY).toContain('"__proto__":{"top":1}');
    expect(PROTO_BODY).toContain(PROTO_FIELDS.metrics);
    for (const [body, id] of [
      [DEEP_BODY, DEEP_EVENT],
      [PROTO_BODY, PROTO_EVENT],
    ] as const) {
      const res = await postWebhook(inlet, body, signedHeaders(body, { id }));
      expect(res.status).toBe(200);
      expect(res.json).toEqual({ received: true, duplicate: false });
    }
  });
  afterAll(async () => {
    await inlet.close();
    tmp.cleanup();
  });

  it(`GET /api/predictions/:id and /api/events/:id answer an output nested ${DEPTH} levels deep`, async () => {
    const detail = await inlet.app.inject({ url: `/api/predictions/${String(deep.id)}` });
    expect(detail.statusCode, detail.body.slice(0, 200)).toBe(200);
    expect(detail.headers['content-type']).toMatch(/^application\/json/);
    expect(detail.body).toContain(`"output":${DEEP_OUTPUT},`);
    expect(field(detail.body, 'output')).toBe(DEEP_OUTPUT);
    expect(JSON.parse(detail.body)).toMatchObject({ id: deep.id, status: 'succeeded', event_count: 1 });

    const event = await inlet.app.inject({ url: `/api/events/${DEEP_EVENT}` });
    expect(event.statusCode).toBe(200);
    expect(event.json()).toMatchObject({ id: DEEP_EVENT, prediction_id: deep.id, body: DEEP_BODY });

    const list = await inlet.app.inject({ url: '/api/predictions' });
    expect(list.statusCode).toBe(200);
    expect(list.json().data.map((p: { id: string }) => p.id)).toContain(deep.id);
  });

  it('shows fields named __proto__ and constructor exactly, at the top and inside input, output, metrics', async () => {
    const detail = await inlet.app.inject({ url: `/api/predictions/${String(proto.id)}` });
    expect(detail.statusCode).toBe(200);
    for (const [name, text] of Object.entries(PROTO_FIELDS))
      expect(field(detail.body, name), name).toBe(text);
    expect(detail.body).toContain(
      '"__proto__":{"top":1},"constructor":"top","toString":"t","hasOwnProperty":0',
    );

    const list = await inlet.app.inject({ url: `/api/predictions?q=${String(proto.id)}` });
    const summary = jsonText(list.json().data[0]);
    expect(summary).toContain(`"metrics":${PROTO_FIELDS.metrics}`);
    expect(summary).toContain('"__proto__":{"top":1},"constructor":"top","toString":"t","hasOwnProperty":0');

    const event = await inlet.app.inject({ url: `/api/events/${PROTO_EVENT}` });
    expect(event.json().body).toBe(PROTO_BODY);
  });

  it('the CLI prints them too, from the database and through a running Inlet alike', async () => {
    const server = await startServe(['--database', db], { REPLICATE_WEBHOOK_SECRET: SECRET });
    try {
      for (const verb of [
        ['predictions', 'show', String(deep.id), '--json'],
        ['predictions', 'show', String(deep.id)],
        ['events', 'show', DEEP_EVENT],
        ['predictions', 'show', String(proto.id), '--json'],
        ['predictions', '--json'],
      ]) {
        const local = await runCli([...verb, '--database', db]);
        expect(local.stderr, verb.join(' ')).toBe('');
        expect(local.code).toBe(0);
        const remote = await runCli([...verb, '--url', server.base]);
        expect({ verb, ...remote }).toEqual({ verb, ...local });
      }
    } finally {
      await stop(server);
    }

    const deepJson = await runCli(['predictions', 'show', String(deep.id), '--json', '--database', db]);
    expect(field(deepJson.stdout, 'output')).toBe(DEEP_OUTPUT);
    // Indented as JSON.stringify(…, null, 2) would, the first levels only: not 2 spaces × 100,000 a line.
    expect(deepJson.stdout.length).toBeLessThan(DEEP_BODY.length + 100_000);
    expect(deepJson.stdout).toMatch(/^{\n {2}"id": "pred/);

    const readable = await runCli(['predictions', 'show', String(deep.id), '--database', db]);
    expect(readable.stdout).toContain(DEEP_EVENT);

    const protoJson = await runCli(['predictions', 'show', String(proto.id), '--json', '--database', db]);
    for (const [name, text] of Object.entries(PROTO_FIELDS))
      expect(field(protoJson.stdout, name), name).toBe(text);
    expect(field(protoJson.stdout, '__proto__')).toBe('{"top":1}');
    expect(field(protoJson.stdout, 'constructor')).toBe('"top"');

    const event = await runCli(['events', 'show', PROTO_EVENT, '--json', '--database', db]);
    expect(JSON.parse(event.stdout).body).toBe(PROTO_BODY);
  });
});
