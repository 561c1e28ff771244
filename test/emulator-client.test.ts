/* eslint-disable @typescript-eslint/no-explicit-any -- the client script's JSON report, checked by expect() */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEmulator,
  findModel,
  loadOrCreateCertificate,
  type EmulatorCertificate,
  type ReplicateEmulator,
} from '../src/emulator/index.js';
import { startReceiver, within, type Receiver } from './emulator-receiver.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/emulator-client.mjs', import.meta.url));
const PNG_SIGNATURE = '89504e470d0a1a0a';

/** Runs the client script in its own process: NODE_EXTRA_CA_CERTS is read only when Node starts. */
function runClient(
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const base = { ...process.env };
    delete base.NODE_EXTRA_CA_CERTS;
    delete base.NODE_TLS_REJECT_UNAUTHORIZED;
    const child = spawn(process.execPath, [SCRIPT], {
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the client script did not finish\n${stdout}\n${stderr}`));
    }, 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the official replicate client against the emulator over HTTPS', () => {
  let dir: string;
  let certificate: EmulatorCertificate;
  let emulator: ReplicateEmulator;
  let receiver: Receiver;
  const logLines: { message: string; fields: any }[] = [];
  let report: any;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'inlet-emulator-client-'));
    certificate = await loadOrCreateCertificate(dir, []);
    // The terminal webhook always fails: the emulator must say when it gives up.
    receiver = await startReceiver(() => ({ status: 500, body: '{"error":"down"}' }));
    const log = (fields: object, message: string) => logLines.push({ message, fields });
    emulator = createEmulator({
      timeScale: 0.05,
      retryWindowMs: 4_000,
      tls: { cert: certificate.cert, key: certificate.key },
      logger: { info: log, warn: log },
    });
    await emulator.listen(0, '127.0.0.1');
    const result = await runClient({
      NODE_EXTRA_CA_CERTS: certificate.certPath,
      EMULATOR_HTTPS_URL: `${emulator.httpsOrigin!}/v1`,
      EMULATOR_HTTP_URL: emulator.url,
      RECEIVER_URL: receiver.url,
    });
    if (result.code !== 0) throw new Error(`client script exited ${result.code}:\n${result.stderr}`);
    report = JSON.parse(result.stdout);
    await within(emulator.settled(), 10_000, 'every prediction and webhook');
  });

  afterAll(async () => {
    await emulator?.close();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves both schemes on one port; objects made over HTTPS carry https URLs', () => {
    expect(emulator.httpsOrigin).toBe(emulator.origin.replace(/^http:/, 'https:'));
    const { created } = report.predictions;
    expect(created.urls.get).toBe(`${emulator.httpsOrigin!}/v1/predictions/${created.id}`);
    expect(created.urls.web).toMatch(/^https:/);
  });

  it('creates, gets, waits for, lists and cancels predictions', () => {
    const p = report.predictions;
    expect(p.error).toBeUndefined();
    expect(p.created.status).toBe('starting');
    expect(p.got).toBe(p.created.id);
    expect(p.done).toEqual({ status: 'succeeded', output: 'hello' });
    expect(p.listed).toContain(p.created.id);
    expect(p.canceled.status).toBe('canceled');
  });

  it('run() returns FileOutput objects for an image model, whose bytes are the PNGs', () => {
    const files = report.runImage;
    expect(files.error).toBeUndefined();
    expect(files).toHaveLength(2);
    for (const file of files) {
      expect(file).toMatchObject({ isReadableStream: true, hasBlob: true });
      expect(file.url).toMatch(new RegExp(`^${emulator.httpsOrigin!}/files/[a-z0-9]{26}/out-[01]\\.png$`));
      expect(file.text).toBe(file.url);
      const bytes = Buffer.from(file.bytes, 'base64');
      expect(bytes.subarray(0, 8).toString('hex')).toBe(PNG_SIGNATURE);
    }
    expect(files[0].bytes).not.toBe(files[1].bytes);
  });

  it('over plain HTTP the same run() gives plain URL strings (why HTTPS matters)', () => {
    expect(report.runImageOverHttp).toEqual([
      { type: 'string', value: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/files\//) },
    ]);
  });

  it('uploads files (files.create, and Blob inputs), serves their object and their bytes', () => {
    const f = report.files;
    expect(f.error).toBeUndefined();
    expect(f.file).toMatchObject({
      name: expect.stringMatching(/^buffer_\d+$/),
      content_type: 'application/octet-stream',
      size: 'hello, file'.length,
      metadata: { purpose: 'test' },
      urls: { get: `${emulator.httpsOrigin!}/v1/files/${f.file.id}` },
    });
    expect(f.file.checksums.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(f.got).toEqual(f.file);
    expect(f.download).toEqual({ status: 200, type: 'application/octet-stream', body: 'hello, file' });
    expect(f.listed).toContain(f.file.id);
    expect(f.blobInput).toMatch(new RegExp(`^${emulator.httpsOrigin!}/v1/files/[a-z0-9]{26}$`));
    expect(f.uploaded).toMatchObject({ content_type: 'text/plain', size: 'blob input'.length });
  });

  it('lists models, gets one, and lists and gets its versions', () => {
    const m = report.models;
    expect(m.error).toBeUndefined();
    expect(m.list.results.map((r: any) => `${r.owner}/${r.name}`)).toEqual(
      expect.arrayContaining(['inlet/echo', 'inlet/image', 'inlet/stream', 'inlet/fail', 'inlet/slow']),
    );
    const image = findModel('inlet/image')!;
    expect(m.model).toMatchObject({ owner: 'inlet', name: 'image', latest_version: { id: image.version } });
    expect(m.model.run_count).toBeGreaterThanOrEqual(2);
    expect(m.versions.results).toEqual([m.model.latest_version]);
    expect(m.version).toEqual(m.model.latest_version);
    expect(m.version.openapi_schema.components.schemas.Input.required).toEqual(['prompt']);
    expect(m.missing.status).toBe(404);
  });

  it('gets a deployment named after a fake model, 404 for others', () => {
    const d = report.deployment;
    expect(d.deployment).toMatchObject({
      owner: 'acme',
      name: 'echo',
      current_release: { model: 'inlet/echo', version: findModel('inlet/echo')!.version },
    });
    expect(d.missing.status).toBe(404);
  });

  it('refuses a training whose destination does not exist, as Replicate does', () => {
    expect(report.trainingBadDestination.status).toBe(404);
    expect(report.trainingBadDestination.error).toContain(
      '{"detail":"The specified training destination does not exist","status":404}',
    );
  });

  it('filters the predictions list by created_after, created_before and source', () => {
    const l = report.listFilters;
    expect(l.all).toBeGreaterThan(3);
    expect(l).toMatchObject({
      createdAfterFuture: 0,
      createdBeforeFuture: l.all,
      web: 0,
      api: l.all,
      bad: 400,
    });
  });

  it('refuses Cancel-After under 5 seconds with 400, and takes 5 s', () => {
    expect(report.cancelAfter.short.status).toBe(400);
    expect(report.cancelAfter.short.body).toContain('the minimum allowed duration is 5 seconds');
    expect(report.cancelAfter.ok.status).toBe(201);
    expect(report.cancelAfter.ok.deadline).toMatch(/Z$/);
  });

  it('without NODE_EXTRA_CA_CERTS the client refuses the self-signed certificate', async () => {
    const result = await runClient({
      EMULATOR_HTTPS_URL: `${emulator.httpsOrigin!}/v1`,
      EMULATOR_HTTP_URL: emulator.url,
      RECEIVER_URL: receiver.url,
    });
    expect(result.code).toBe(0);
    const untrusted = JSON.parse(result.stdout);
    expect(untrusted.predictions.error).toMatch(/fetch failed/);
    expect(untrusted.runImageOverHttp).toHaveLength(1);
  });

  it('logs when a webhook is given up for good, after the last retry', () => {
    const id = report.predictions.created.id;
    const attempts = emulator.deliveries().filter((d) => d.predictionId === id);
    expect(attempts.length).toBeGreaterThan(1);
    expect(attempts.at(-1)!.willRetry).toBe(false);
    const givenUp = logLines.filter((l) => l.message === 'webhook given up');
    expect(givenUp).toEqual([
      {
        message: 'webhook given up',
        fields: expect.objectContaining({
          predictionId: id,
          event: 'completed',
          attempts: attempts.length,
          reason: 'retry window closed',
        }),
      },
    ]);
    expect(receiver.received).toHaveLength(attempts.length);
  });
});
