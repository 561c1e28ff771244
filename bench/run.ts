import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { SETTING_DEFAULTS } from '../src/config.js';
import { openStore } from '../src/store/index.js';
import { type BigBodyResult, sendBigBodies } from './big-bodies.js';
import { incomingEvent, MODELS, writeSignedDeliveries } from './deliveries.js';
import { CAUGHT_UP_MS, KEPT_UP_MS, type PacedResult } from './paced.js';
import { startPacedProcess } from './paced-process.js';
import { serveArgs } from './serve-command.js';

// `npm run bench`: Inlet (SQLite, PostgreSQL) against a bare node:http server and a verify + insert floor
// on each database, on this machine, driven by wrk over loopback with distinct, validly signed
// deliveries; then a paced load, big bodies and a million stored. Results go to stdout and
// docs/benchmarks.md.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const HERE = join(ROOT, 'bench');
const BIN = join(ROOT, 'dist/cli/bin.js');
const BARE = join(ROOT, 'dist/.bench/bench/bare-server.js');
const FLOOR = join(ROOT, 'dist/.bench/bench/floor-server.js');
const TUTORIAL = '/work/shared/tutorial';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const PATH = '/replicate-webhook';

const env = process.env;
const SECONDS = Number(env.INLET_BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = Number(env.INLET_BENCH_WARMUP_SECONDS ?? 3);
const ROUNDS = Number(env.INLET_BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(env.INLET_BENCH_CONNECTIONS ?? 50);
const SCALE_DELIVERIES = Number(env.INLET_BENCH_SCALE_DELIVERIES ?? 1_000_000);
const PG_ADMIN_URL = env.INLET_BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const WRITE_DOCS = env.INLET_BENCH_WRITE_DOCS !== '0';
/** The paced (open-loop) load: deliveries per second (0 skips it) and seconds measured after a warm-up. */
const PACED_RATE = Number(env.INLET_BENCH_PACED_RATE ?? 2000);
const PACED_SECONDS = Number(env.INLET_BENCH_PACED_SECONDS ?? 10);
/** The paced warm-up: at least this, then until the server has caught up, at most the longest. */
const PACED_WARMUP_SECONDS = 2;
const PACED_MAX_WARMUP_SECONDS = 10;
/** 50 clients POSTing bodies near Inlet's size limit at once (0 skips it). */
const BIG_BODIES = env.INLET_BENCH_BIG_BODIES !== '0';
const BIG_BODY_CLIENTS = 50;
const EXTRA_ARGS = (env.INLET_BENCH_SERVE_ARGS ?? '').split(' ').filter((a) => a !== '');
/** Writes a CPU profile of each Inlet server there when it exits (`node --cpu-prof`). */
const CPU_PROF_DIR = env.INLET_BENCH_CPU_PROF_DIR;
/**
 * Another build's `dist/cli/bin.js` (a checkout of an earlier commit, built): its Inlet lines run in the
 * same rounds as this build's, for "no slower than before" in one run.
 */
const BASELINE_BIN = env.INLET_BENCH_BASELINE_BIN;
/** The most deliveries a second a line is signed for before it has a round of its own (see `expected`). */
const FIRST_ROUND_RPS = 30_000;
/** Line names separated by `|` (names hold commas): only those lines run (a focused A/B); all when unset. */
const ONLY = (env.INLET_BENCH_ONLY ?? '')
  .split('|')
  .map((name) => name.trim())
  .filter((name) => name !== '');

interface WrkResult {
  requests: number;
  duration_us: number;
  errors_connect: number;
  errors_read: number;
  errors_write: number;
  errors_status: number;
  errors_timeout: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
  mean_us: number;
  sent: number;
  wrapped: number;
}

interface Measurement {
  rps: number;
  /** Server CPU (user + system, all threads) per request: steadier than req/s on a shared machine. */
  cpuUsPerRequest: number;
  /** Inlet's own p99 (its latency histogram, request received → answer), as the bucket bound. */
  serverP99Ms?: number;
  /** Lines on PostgreSQL: the database server's processes' CPU per request (they share the machine). */
  postgresCpuUsPerRequest?: number;
  p50Ms: number;
  p99Ms: number;
  rssMiB: number;
  errors: number;
  wrapped: number;
  /** With destinations: seconds after the load until nothing was pending, and messages delivered. */
  drainSeconds?: number;
  delivered?: number;
}

const DESTINATIONS_NAME = 'Inlet, SQLite, 2 destinations';
/** The SQLite line on a database that already holds SCALE_DELIVERIES deliveries (same rounds as the rest). */
const SCALE_NAME = `Inlet, SQLite, ${SCALE_DELIVERIES.toLocaleString('en-US')} deliveries stored`;
const FLOOR_SQLITE = 'floor: verify + insert (not Inlet)';
const FLOOR_POSTGRES = 'floor: verify + insert, PostgreSQL (not Inlet)';
/** The lines that also take the paced load (those of them this run has). */
const PACED_LINES = [
  // No database, no verify: what the sender and the machine add to every line's latencies.
  'bare node:http',
  'Inlet, SQLite',
  'Inlet, PostgreSQL',
  FLOOR_SQLITE,
  FLOOR_POSTGRES,
  'baseline build, SQLite',
  'baseline build, PostgreSQL',
];

/** The floor an Inlet line is held against: the one on its own database. */
function floorOf(name: string): string | undefined {
  if (!name.startsWith('Inlet') && !name.startsWith('baseline')) return undefined;
  return name.includes('PostgreSQL') ? FLOOR_POSTGRES : FLOOR_SQLITE;
}

interface Started {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

interface ServerSpec {
  name: string;
  /** Sends the tutorial's hex signature instead of the standard headers. */
  hex?: boolean;
  /** Needs distinct, freshly signed deliveries (an Inlet). */
  signed: boolean;
  start(work: string, round: number): Promise<Started>;
  /** Why it is not measured, when it cannot be. */
  unavailable?: string;
}

const notes: string[] = [];
const log = (line: string) => process.stdout.write(`${line}\n`);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User + system CPU seconds the process has used so far. */
/** User + system CPU seconds in a `/proc/PID/stat` line (the fields after the command's name). */
function statCpuSeconds(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

function cpuSeconds(pid: number): number {
  try {
    return statCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return NaN;
  }
}

function peakRssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kib === undefined ? NaN : Number(kib) / 1024;
  } catch {
    return NaN;
  }
}

/** Starts a server process with its output in a file, and waits for the line that names its port. */
async function startProcess(
  command: string,
  args: string[],
  processEnv: NodeJS.ProcessEnv,
  logPath: string,
  portLine: RegExp,
  timeoutMs = 20_000,
): Promise<Started> {
  const out = openSync(logPath, 'w');
  const proc: ChildProcess = spawn(command, args, {
    cwd: ROOT,
    env: processEnv,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const deadline = Date.now() + timeoutMs;
  let port: number | undefined;
  while (port === undefined) {
    const text = readFileSync(logPath, 'utf8');
    const m = portLine.exec(text);
    if (m?.[1] !== undefined) port = Number(m[1]);
    else if (exited || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`${command} ${args.join(' ')} did not start:\n${text.slice(-2000)}`);
    } else await sleep(50);
  }
  return {
    pid: proc.pid!,
    port,
    async stop() {
      if (exited) return;
      proc.kill('SIGTERM');
      const killed = await Promise.race([exit.then(() => true), sleep(10_000).then(() => false)]);
      if (!killed) {
        proc.kill('SIGKILL');
        await exit;
      }
    },
  };
}

/** Node's options for every server the bench starts (e.g. `--max-semi-space-size=8`, `--import` of a probe). */
const NODE_OPTIONS = env.INLET_BENCH_NODE_OPTIONS;
const nodeEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
  PATH: env.PATH,
  ...(NODE_OPTIONS === undefined ? {} : { NODE_OPTIONS }),
  ...extra,
});

function inletServer(
  name: string,
  database: (work: string, round: number) => Promise<string>,
  args: () => string[] = () => [],
  bin: string = BIN,
): ServerSpec {
  return {
    name,
    signed: true,
    async start(work, round) {
      const url = await database(work, round);
      return startProcess(
        process.execPath,
        serveArgs(bin, url, [...args(), ...EXTRA_ARGS], CPU_PROF_DIR),
        nodeEnv({ REPLICATE_WEBHOOK_SECRET: SECRET, INLET_LOG_FORMAT: 'json' }),
        join(work, `${name.replace(/\W+/g, '-')}-${round}.log`),
        /Inlet is receiving Replicate webhooks at http:\/\/127\.0\.0\.1:(\d+)\//,
      );
    },
  };
}

function waitPort(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve) => {
    const attempt = () => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) resolve(false);
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

async function waitReady(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) return true;
    } catch {
      // not yet
    }
    await sleep(200);
  }
  return false;
}

/** Starts a server and waits until it answers; undefined (with a note) when it does not. */
async function startReady(spec: ServerSpec, work: string, round: number): Promise<Started | undefined> {
  let server: Started;
  try {
    server = await spec.start(work, round);
  } catch (error) {
    notes.push(`${spec.name} round ${round} did not start: ${(error as Error).message.split('\n')[0]}`);
    return undefined;
  }
  const ready = spec.signed ? await waitReady(server.port, 15_000) : await waitPort(server.port, 15_000);
  if (ready) return server;
  notes.push(`${spec.name} round ${round}: never became ready; skipped.`);
  await server.stop();
  return undefined;
}

/**
 * One wrk run, from `offset` in the requests file. Without `offset`, wrk loads its requests and
 * waits: `loaded` resolves then, and `go` starts its clock from the offset it is given.
 */
function startWrk(
  port: number,
  seconds: number,
  requestsFile: string | undefined,
  offset?: number,
): { loaded: Promise<void>; go(offset: number): void; kill(): void; result: Promise<WrkResult> } {
  const args = [
    '-t1',
    `-c${CONNECTIONS}`,
    `-d${seconds}s`,
    '--timeout',
    '5s',
    '-s',
    join(HERE, 'wrk-deliveries.lua'),
    `http://127.0.0.1:${port}${PATH}`,
  ];
  const wrkEnv = {
    ...nodeEnv({}),
    INLET_BENCH_REQUESTS: requestsFile ?? '',
    ...(offset === undefined ? { INLET_BENCH_WAIT: '1' } : { INLET_BENCH_OFFSET: String(offset) }),
  };
  const proc = spawn('wrk', args, { env: wrkEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let onLoaded: () => void = () => {};
  const loaded = new Promise<void>((resolve) => (onLoaded = resolve));
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('BENCH_LOADED\n')) onLoaded();
  });
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const result = new Promise<WrkResult>((resolve, reject) => {
    // Loading a large request file takes a few seconds before the clock starts.
    const timer = setTimeout(() => proc.kill('SIGKILL'), (seconds + 120) * 1000);
    proc.on('exit', () => {
      clearTimeout(timer);
      const line = /^BENCH_RESULT (.*)$/m.exec(out)?.[1];
      if (line === undefined) reject(new Error(`wrk gave no result:\n${out}`));
      else resolve(JSON.parse(line) as WrkResult);
    });
  });
  return {
    // Settles either way: a wrk that exits before it loaded rejects here too.
    loaded: Promise.race([loaded, result.then(() => {})]),
    go: (start) => proc.stdin.end(`${start}\n`),
    kill: () => proc.kill('SIGKILL'),
    result,
  };
}

/** Cumulative counts of `inlet_webhook_duration_seconds` for accepted deliveries, by bucket bound. */
async function acceptedHistogram(port: number): Promise<Map<number, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const buckets = new Map<number, number>();
  for (const m of text.matchAll(
    /^inlet_webhook_duration_seconds_bucket\{le="([^"]+)",outcome="accepted"\} (\d+)$/gm,
  )) {
    buckets.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  }
  return buckets;
}

function serverP99Ms(before: Map<number, number>, after: Map<number, number>): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  for (const le of bounds) {
    if ((after.get(le) ?? 0) - (before.get(le) ?? 0) >= 0.99 * total) return le * 1000;
  }
  return NaN;
}

/**
 * CPU seconds (user + system) used so far by every process named `postgres` on this machine: the
 * database server's backends, its writers and autovacuum. Over a measured window this is what the
 * server did for the line under test (nothing else uses PostgreSQL during a bench), so it may be
 * added to that line's own CPU. Backends that exit within the window are missed (none do: a pool's
 * connections outlive the run).
 */
function postgresCpuSeconds(): number {
  let seconds = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) === 'postgres')
      seconds += statCpuSeconds(stat);
  }
  return seconds;
}

function toMeasurement(result: WrkResult, rssMiB: number, cpuSec: number): Measurement {
  return {
    rps: result.requests / (result.duration_us / 1e6),
    cpuUsPerRequest: (cpuSec * 1e6) / result.requests,
    p50Ms: result.p50_us / 1000,
    p99Ms: result.p99_us / 1000,
    rssMiB,
    errors:
      result.errors_connect +
      result.errors_read +
      result.errors_write +
      result.errors_status +
      result.errors_timeout,
    wrapped: result.wrapped,
  };
}

/** Warm-up then measurement against one started server; signed servers get fresh deliveries. */
async function measure(
  spec: ServerSpec,
  server: Started,
  work: string,
  expectedRps: number,
): Promise<Measurement> {
  // Every server gets the same kind of requests (the ceiling too: same bodies and headers, so wrk
  // does the same work). Receivers that store get distinct ones for the whole run with room to spare
  // (a reused one is counted and reported), signed just now, well within the tolerance.
  const distinct = spec.signed || spec.hex === true;
  const file = join(work, 'deliveries.txt');
  {
    const count = distinct ? Math.ceil(expectedRps * (SECONDS + WARMUP_SECONDS) * 1.5) + 20_000 : 50_000;
    const tag = randomBytes(4).toString('hex');
    const t0 = Date.now();
    const meanBytes = writeSignedDeliveries(file, count, SECRET, tag, { hex: spec.hex === true });
    log(`  ${count} deliveries signed (mean body ${Math.round(meanBytes)} B) in ${Date.now() - t0} ms`);
  }
  // The measured run loads its requests while the warm-up runs and starts the moment it ends. Loading
  // takes a few seconds: a pause that long before the window let a runner with destinations drain the
  // warm-up's backlog, still finishing as the window began, and its CPU was counted in the window.
  const measured = startWrk(server.port, SECONDS, file);
  measured.result.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
  let warm: WrkResult;
  try {
    warm = await startWrk(server.port, WARMUP_SECONDS, file, 0).result;
  } catch (error) {
    measured.kill();
    throw error;
  }
  await measured.loaded;
  const cpuBefore = cpuSeconds(server.pid);
  const onPostgres = spec.name.includes('PostgreSQL');
  const postgresBefore = onPostgres ? postgresCpuSeconds() : 0;
  const histogramBefore = spec.signed ? await acceptedHistogram(server.port) : undefined;
  measured.go(warm.sent);
  const result = await measured.result;
  const m = toMeasurement(result, peakRssMiB(server.pid), cpuSeconds(server.pid) - cpuBefore);
  if (onPostgres)
    m.postgresCpuUsPerRequest = ((postgresCpuSeconds() - postgresBefore) * 1e6) / result.requests;
  if (histogramBefore !== undefined)
    m.serverP99Ms = serverP99Ms(histogramBefore, await acceptedHistogram(server.port));
  if (m.errors > 0) notes.push(`${spec.name}: ${m.errors} errors or non-2xx answers in one run.`);
  if (distinct && m.wrapped > 0)
    notes.push(`${spec.name}: ${m.wrapped} requests reused a delivery (the file ran out).`);
  rmSync(file, { force: true });
  return m;
}

/** Fresh databases on the PostgreSQL server (each call one more), all dropped at the end. */
async function postgresDatabase(): Promise<
  { url: (work: string, round: number) => Promise<string>; drop(): Promise<void> } | string
> {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  try {
    await admin.connect();
  } catch (error) {
    return `no PostgreSQL answers at ${PG_ADMIN_URL} (${(error as Error).message}).`;
  }
  const created: string[] = [];
  return {
    async url(_work, round) {
      const name = `inlet_bench_${process.pid}_${round}_${created.length}`;
      await admin.query(`DROP DATABASE IF EXISTS ${name}`);
      await admin.query(`CREATE DATABASE ${name}`);
      created.push(name);
      const url = new URL(PG_ADMIN_URL);
      url.pathname = `/${name}`;
      return url.toString();
    },
    async drop() {
      for (const name of created)
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await admin.end();
    },
  };
}

function floorServer(
  name: string,
  database: (work: string, round: number) => Promise<Record<string, string>>,
): ServerSpec {
  return {
    name,
    signed: true,
    start: async (work, round) =>
      startProcess(
        process.execPath,
        [FLOOR],
        nodeEnv({ REPLICATE_WEBHOOK_SECRET: SECRET, ...(await database(work, round)) }),
        join(work, `${name.replace(/\W+/g, '-')}-${round}.log`),
        /listening at http:\/\/127\.0\.0\.1:(\d+)\//,
      ),
  };
}

function pythonHas(modules: string[]): boolean {
  const r = spawnSync('/usr/bin/python3', ['-c', modules.map((m) => `import ${m}`).join('; ')], {
    stdio: 'ignore',
  });
  return r.status === 0;
}

function tutorialServers(): ServerSpec[] {
  const specs: ServerSpec[] = [];
  const flask: ServerSpec = {
    name: 'tutorial Flask (dev server)',
    signed: false,
    start: (work, round) =>
      startProcess(
        '/usr/bin/python3',
        [join(TUTORIAL, 'flask_server.py')],
        nodeEnv({ PORT: String(20_000 + Math.floor(Math.random() * 20_000)), PYTHONUNBUFFERED: '1' }),
        join(work, `flask-${round}.log`),
        /Running on http:\/\/127\.0\.0\.1:(\d+)/,
      ),
  };
  if (!pythonHas(['flask'])) flask.unavailable = "Debian's python3-flask is not installed";
  const fastapiPort = 20_000 + Math.floor(Math.random() * 20_000);
  const fastapi: ServerSpec = {
    name: 'tutorial FastAPI (uvicorn)',
    signed: false,
    hex: true,
    start: (work, round) =>
      startProcess(
        '/usr/bin/python3',
        [
          '-m',
          'uvicorn',
          'fastapi_server:app',
          '--host',
          '127.0.0.1',
          '--port',
          String(fastapiPort),
          '--log-level',
          'warning',
        ],
        { ...nodeEnv({ REPLICATE_WEBHOOK_SECRET: SECRET }), PYTHONPATH: TUTORIAL },
        join(work, `fastapi-${round}.log`),
        // uvicorn at warning level prints nothing once up: the port is known, readiness is polled below.
        /^()/,
      ).then(async (s) => ({ ...s, port: fastapiPort })),
  };
  if (!pythonHas(['fastapi', 'uvicorn']))
    fastapi.unavailable = "Debian's python3-fastapi / python3-uvicorn are not installed";
  specs.push(flask, fastapi);
  return specs;
}

function machine(work: string): Record<string, string> {
  const cpu = cpus();
  const df = (() => {
    try {
      return execFileSync('df', ['-T', '-h', work], { encoding: 'utf8' }).trim().split('\n').pop() ?? '';
    } catch {
      return 'unknown';
    }
  })();
  // What one fsync costs here bounds every power-loss-safe commit.
  const probe = join(work, 'fsync-probe');
  const fd = openSync(probe, 'w');
  const block = Buffer.alloc(4096, 1);
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = process.hrtime.bigint();
    writeSync(fd, block);
    fdatasyncSync(fd);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  closeSync(fd);
  rmSync(probe, { force: true });
  const wrkVersion = spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? '';
  return {
    cpu: `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown'}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    kernel: `Linux ${release()}`,
    node: process.version,
    wrk: wrkVersion,
    disk: df.replace(/\s+/g, ' '),
    load: `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at start (other work on this machine skews results)`,
    fsync: `${median(times).toFixed(2)} ms median 4 KiB write + fdatasync (p99 ${[...times].sort((a, b) => a - b)[197]!.toFixed(2)} ms)`,
  };
}

async function bulkLoad(path: string, count: number): Promise<number> {
  const store = await openStore(`sqlite:${path}`, { mode: 'serve' });
  const t0 = Date.now();
  const tag = 'scale';
  const start = Date.now() - 30 * 24 * 3600 * 1000;
  const step = (30 * 24 * 3600 * 1000) / count;
  try {
    for (let seq = 0; seq < count;) {
      const batch = [];
      for (let i = 0; i < 5000 && seq < count; i++, seq++)
        batch.push(incomingEvent(tag, seq, Math.floor(start + seq * step)));
      await store.commitEvents(batch);
    }
  } finally {
    await store.close();
  }
  return (Date.now() - t0) / 1000;
}

async function timeQueries(
  port: number,
): Promise<{ name: string; url: string; p50Ms: number; maxMs: number; rows: number }[]> {
  const queries = [
    ['first page', '/api/predictions'],
    ['status=succeeded', '/api/predictions?status=succeeded'],
    ['status=processing (rare)', '/api/predictions?status=processing'],
    ['model', `/api/predictions?model=${encodeURIComponent(MODELS[7]!)}`],
    ['status + model', `/api/predictions?status=succeeded&model=${encodeURIComponent(MODELS[3]!)}`],
    ['second page (cursor)', ''],
  ] as const;
  const out = [];
  let cursorUrl = '/api/predictions';
  {
    const first = (await (await fetch(`http://127.0.0.1:${port}/api/predictions`)).json()) as {
      next_cursor: string | null;
    };
    if (first.next_cursor !== null)
      cursorUrl = `/api/predictions?cursor=${encodeURIComponent(first.next_cursor)}`;
  }
  for (const [name, path] of queries) {
    const url = path === '' ? cursorUrl : path;
    const times: number[] = [];
    let rows = 0;
    for (let i = 0; i < 32; i++) {
      const t0 = process.hrtime.bigint();
      const res = await fetch(`http://127.0.0.1:${port}${url}`);
      const json = (await res.json()) as { data: unknown[] };
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
      rows = json.data.length;
      if (i >= 2) times.push(ms);
    }
    out.push({ name, url, p50Ms: median(times), maxMs: Math.max(...times), rows });
  }
  return out;
}

interface PacedMeasurement extends PacedResult {
  /** Inlet's own p99 over the window (the bucket bound), NaN for a server without Inlet's histogram. */
  serverP99Ms: number;
  rssMiB: number;
}

/** A warm-up then the measured window at PACED_RATE, the sender never pausing in between. */
async function measurePaced(server: Started): Promise<PacedMeasurement> {
  // The bench's first fetch loads fetch's code (≈ 60 ms): done now, not when the window opens, when
  // the histogram is read. The sender runs in a process of its own (bench/paced-process.ts).
  await acceptedHistogram(server.port);
  const run = startPacedProcess({
    url: new URL(`http://127.0.0.1:${server.port}${PATH}`),
    secret: SECRET,
    rate: PACED_RATE,
    warmupSeconds: PACED_WARMUP_SECONDS,
    maxWarmupSeconds: PACED_MAX_WARMUP_SECONDS,
    seconds: PACED_SECONDS,
    // At 2,000/s a server answering within 10 ms needs about 20 sockets: this cap binds only on one
    // that misses the target anyway, and the wait for a socket is counted.
    connections: CONNECTIONS,
    tag: randomBytes(4).toString('hex'),
  });
  await run.measuring;
  const before = await acceptedHistogram(server.port);
  const result = await run.done;
  const after = await acceptedHistogram(server.port);
  return { ...result, serverP99Ms: serverP99Ms(before, after), rssMiB: peakRssMiB(server.pid) };
}

/** Just under Inlet's default `--max-body` (src/config.ts): the largest deliveries it takes. */
const BIG_BODY_BYTES = SETTING_DEFAULTS.maxBodyBytes - 4096;

/**
 * The peak RSS stated for big bodies: the bench's own bound, plus four copies of the budget, each held
 * body as read, as text, as parsed and as written (measured: ≈ 460–500 MiB with the defaults).
 */
const BIG_BODY_RSS_BOUND_MB = 150 + (4 * SETTING_DEFAULTS.maxInflightBytes) / 1e6;

/** How Inlet keeps the memory those bodies take bounded (src/server/app.ts, src/server/inflight-bytes.ts). */
const INFLIGHT_BOUND = `How it stays bounded: every request with a body reserves its \`Content-Length\` from one budget, \`--max-inflight-bytes\` (default ${SETTING_DEFAULTS.maxInflightBytes.toLocaleString('en-US')} bytes, and at least twice \`--max-body\`), before a byte of the body is read, and gives it back when its response is over, however the request ends (a body of unknown length reserves chunk by chunk as it arrives, and its join once more). A request that would pass the budget is answered 503 \`storage_unavailable\` with \`retry-after: 2\` and \`connection: close\` before its body is read, none of which is kept: the connection reads and drops the rest for up to 2 s, so that it closes without a reset (src/server/webhook-route.ts, src/server/inflight-bytes.ts, src/server/close-gently.ts). So at most ${Math.floor(SETTING_DEFAULTS.maxInflightBytes / BIG_BODY_BYTES)} of these bodies are held at once. The budget counts bodies as read, not what is made from one while it is taken (its text for \`JSON.parse\`, the strings parsed from it, the row written, garbage until V8 collects it): the bound stated is the bench's 150 MB plus four times the budget, ${fmt(BIG_BODY_RSS_BOUND_MB)} MB with the defaults.`;

interface BigBodyMeasurement extends BigBodyResult {
  rssMiB: number;
  /** The most `inlet_inflight_body_bytes` showed, sampled every 200 ms. */
  maxHeldMiB: number;
}

/** `inlet serve` on a fresh SQLite file under BIG_BODY_CLIENTS clients sending BIG_BODY_BYTES bodies. */
async function measureBigBodies(work: string): Promise<BigBodyMeasurement | undefined> {
  const dbPath = join(work, 'big-bodies.db');
  const spec = inletServer('Inlet, SQLite, big bodies', async () => `sqlite:${dbPath}`);
  const server = await startReady(spec, work, 0);
  if (server === undefined) return undefined;
  let maxHeld = 0;
  const sampler = setInterval(() => {
    void inflightBytes(server.port).then((held) => (maxHeld = Math.max(maxHeld, held)));
  }, 200);
  try {
    const result = await sendBigBodies({
      url: new URL(`http://127.0.0.1:${server.port}${PATH}`),
      secret: SECRET,
      bodyBytes: BIG_BODY_BYTES,
      connections: BIG_BODY_CLIENTS,
      seconds: SECONDS,
      tag: randomBytes(4).toString('hex'),
    });
    return { ...result, rssMiB: peakRssMiB(server.pid), maxHeldMiB: maxHeld / 2 ** 20 };
  } finally {
    clearInterval(sampler);
    await server.stop();
    // Gigabytes of bodies: not left for the scale check's disk.
    for (const suffix of ['', '-wal', '-shm']) rmSync(dbPath + suffix, { force: true });
  }
}

/** Request body bytes Inlet holds right now (`inlet_inflight_body_bytes`); 0 when /metrics does not answer. */
async function inflightBytes(port: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(/^inlet_inflight_body_bytes (\d+)$/m.exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function bigBodyRow(b: BigBodyMeasurement | undefined): string {
  const target = `${BIG_BODY_CLIENTS} clients POSTing bodies near the size limit: peak RSS bounded, ≤ 150 MB + 4 × \`--max-inflight-bytes\` = ${fmt(BIG_BODY_RSS_BOUND_MB)} MB`;
  if (b === undefined) return `| ${target} | n/a | not measured |`;
  const budgetMiB = SETTING_DEFAULTS.maxInflightBytes / 2 ** 20;
  // Bounded only counts if the budget held and deliveries still got in (refusing all is not a bound).
  const ok = b.rssMiB * 1.048576 <= BIG_BODY_RSS_BOUND_MB && b.maxHeldMiB <= budgetMiB && b.stored > 0;
  return `| ${target} | ${fmt(b.rssMiB)} MiB; request bodies held at most ${fmt(b.maxHeldMiB, 1)} of ${fmt(budgetMiB)} MiB; ${statusList(b.statuses)} | ${ok ? 'met' : '**missed**'} |`;
}

function statusList(statuses: Map<number, number>): string {
  return [...statuses.entries()]
    .sort(([a], [b]) => a - b)
    .map(([status, count]) => `${count} × ${status}`)
    .join(', ');
}

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

async function main(): Promise<void> {
  if (spawnSync('wrk', ['-v']).error !== undefined) {
    throw new Error("wrk is not installed: apt-get install -y wrk (Debian's package)");
  }
  if (!existsSync(BIN) || !existsSync(BARE) || !existsSync(FLOOR))
    throw new Error('build first: npm run bench builds dist/ and dist/.bench/');
  const work = mkdtempSync(join(env.INLET_BENCH_DIR ?? tmpdir(), 'inlet-bench-'));
  const startedAt = new Date();
  // The destinations' receiver: a bare node:http server answering 200 at once, up for the whole run.
  const receiver = await startProcess(
    process.execPath,
    [BARE],
    nodeEnv({}),
    join(work, 'receiver.log'),
    /listening at http:\/\/127\.0\.0\.1:(\d+)\//,
  );
  const configPath = join(work, 'inlet.config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      destinations: ['one', 'two'].map((name) => ({
        name,
        url: `http://127.0.0.1:${receiver.port}/${name}`,
        events: ['prediction.*'],
        allowPrivateNetwork: true,
      })),
    }),
  );
  const pgDb = await postgresDatabase();
  const servers: ServerSpec[] = [
    {
      name: 'bare node:http',
      signed: false,
      start: (w, round) =>
        startProcess(
          process.execPath,
          [BARE],
          nodeEnv({}),
          join(w, `bare-${round}.log`),
          /listening at http:\/\/127\.0\.0\.1:(\d+)\//,
        ),
    },
    floorServer(FLOOR_SQLITE, async (w, round) => ({ FLOOR_DATABASE: join(w, `floor-${round}.db`) })),
    inletServer('Inlet, SQLite', async (w, round) => `sqlite:${join(w, `inlet-${round}.db`)}`),
    inletServer(
      DESTINATIONS_NAME,
      async (w, round) => `sqlite:${join(w, `inlet-dest-${round}.db`)}`,
      () => ['--config', configPath],
    ),
  ];
  const pgBuilt = existsSync(join(ROOT, 'dist/store/postgres/postgres-store.js'));
  if (typeof pgDb === 'string') {
    notes.push(`Inlet and the floor on PostgreSQL skipped: ${pgDb}`);
  } else {
    servers.splice(
      2,
      0,
      floorServer(FLOOR_POSTGRES, async (w, round) => ({ FLOOR_DATABASE_URL: await pgDb.url(w, round) })),
    );
    if (pgBuilt) servers.push(inletServer('Inlet, PostgreSQL', pgDb.url));
    else
      notes.push(
        'Inlet on PostgreSQL skipped: PostgreSQL support is not built in this tree (no dist/store/postgres/postgres-store.js).',
      );
  }
  if (BASELINE_BIN !== undefined) {
    if (!existsSync(BASELINE_BIN)) throw new Error(`INLET_BENCH_BASELINE_BIN: no file ${BASELINE_BIN}`);
    notes.push(`Baseline lines run ${BASELINE_BIN}.`);
    servers.push(
      inletServer(
        'baseline build, SQLite',
        async (w, round) => `sqlite:${join(w, `baseline-${round}.db`)}`,
        undefined,
        BASELINE_BIN,
      ),
    );
    if (typeof pgDb !== 'string' && pgBuilt) {
      servers.push(inletServer('baseline build, PostgreSQL', pgDb.url, undefined, BASELINE_BIN));
    }
  }
  for (const t of tutorialServers()) {
    if (t.unavailable !== undefined)
      notes.push(`${t.name} not measured: ${t.unavailable} (not installed on purpose).`);
    else servers.push(t);
  }
  // Scale check: the list API on a database of SCALE_DELIVERIES deliveries, then ingest into it in the
  // same rounds as the empty database's line (each round adds its deliveries), so the two medians
  // compare like with like.
  let scale:
    { loadSeconds: number; queries: Awaited<ReturnType<typeof timeQueries>>; dbMiB: number } | undefined;
  if (SCALE_DELIVERIES > 0 && (ONLY.length === 0 || ONLY.includes(SCALE_NAME))) {
    const dbPath = join(work, 'scale.db');
    log(`scale: bulk-loading ${SCALE_DELIVERIES} deliveries into ${dbPath}`);
    const loadSeconds = await bulkLoad(dbPath, SCALE_DELIVERIES);
    const dbMiB = Number(execFileSync('du', ['-sm', dbPath], { encoding: 'utf8' }).split('\t')[0]);
    log(`  loaded in ${fmt(loadSeconds, 1)} s (${dbMiB} MiB)`);
    const spec = inletServer(SCALE_NAME, async () => `sqlite:${dbPath}`);
    spawnSync('sync');
    const server = await spec.start(work, 0);
    try {
      await waitReady(server.port, 15_000);
      const queries = await timeQueries(server.port);
      for (const q of queries)
        log(`  GET ${q.url}: p50 ${fmt(q.p50Ms, 2)} ms, max ${fmt(q.maxMs, 2)} ms (${q.rows} rows)`);
      scale = { loadSeconds, queries, dbMiB };
    } finally {
      await server.stop();
    }
    servers.splice(servers.findIndex((spec) => spec.name === 'Inlet, SQLite') + 1, 0, spec);
  }
  if (ONLY.length > 0) {
    const kept = servers.filter((spec) => ONLY.includes(spec.name));
    notes.push(`Only the lines named in INLET_BENCH_ONLY: ${kept.map((spec) => spec.name).join('; ')}.`);
    servers.splice(0, servers.length, ...kept);
  }
  const m = machine(work);
  log(`machine: ${JSON.stringify(m)}`);

  const results = new Map<string, Measurement[]>();
  const paced = new Map<string, PacedMeasurement>();
  // Sizes each server's request file: its best round so far, and in its first round the bare line's
  // (no receiver is faster), at most FIRST_ROUND_RPS (the file takes ≈ 1.6 KB a delivery). A fixed
  // guess of 12,000 ran short on a fast day: the floor reused 31,990 deliveries in its first round.
  const best = (name: string) => Math.max(...(results.get(name) ?? []).map((r) => r.rps));
  const expected = (name: string) => {
    if (results.has(name)) return best(name);
    return results.has('bare node:http') ? Math.min(best('bare node:http'), FIRST_ROUND_RPS) : 12_000;
  };
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const spec of servers) {
        log(`round ${round}: ${spec.name}`);
        // The previous server's database and log are written back now, not during this measurement.
        spawnSync('sync');
        const server = await startReady(spec, work, round);
        if (server === undefined) continue;
        try {
          const result = await measure(spec, server, work, expected(spec.name));
          if (spec.name === DESTINATIONS_NAME) {
            // How long after the load stops until both destinations have nothing pending.
            const drainStarted = performance.now();
            const deadline = Date.now() + 120_000;
            for (;;) {
              const res = await fetch(`http://127.0.0.1:${server.port}/api/destinations`);
              const data = ((await res.json()) as { data: { pending: number }[] }).data;
              if (data.every((d) => d.pending === 0)) break;
              if (Date.now() > deadline) break;
              // Not more often: each call counts the pending messages (≈ 2 ms of the event loop at a
              // backlog of 60,000), work the runner would otherwise do.
              await sleep(500);
            }
            const metricsText = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
            const delivered = [
              ...metricsText.matchAll(/^inlet_messages_total\{[^}]*outcome="delivered"[^}]*\} (\d+)/gm),
            ]
              .map((m) => Number(m[1]))
              .reduce((a, b) => a + b, 0);
            result.drainSeconds = (performance.now() - drainStarted) / 1000;
            result.delivered = delivered;
            log(
              `  destinations drained ${fmt(result.drainSeconds, 1)} s after the load; ${delivered} messages delivered`,
            );
          }
          log(
            `  ${fmt(result.rps)} req/s, ${fmt(result.cpuUsPerRequest)} µs CPU/request${result.postgresCpuUsPerRequest === undefined ? '' : ` (+ PostgreSQL ${fmt(result.postgresCpuUsPerRequest)})`}, p50 ${fmt(result.p50Ms, 2)} ms, p99 ${fmt(result.p99Ms, 2)} ms, peak RSS ${fmt(result.rssMiB)} MiB, errors ${result.errors}`,
          );
          results.set(spec.name, [...(results.get(spec.name) ?? []), result]);
        } finally {
          await server.stop();
        }
      }
    }
    if (PACED_RATE > 0) {
      for (const spec of servers.filter((s) => PACED_LINES.includes(s.name))) {
        log(`paced: ${spec.name} at ${PACED_RATE}/s`);
        spawnSync('sync');
        const server = await startReady(spec, work, ROUNDS + 1);
        if (server === undefined) continue;
        try {
          const p = await measurePaced(server);
          log(
            `  warmed up in ${fmt(p.warmedUpSeconds, 1)} s${p.caughtUp ? '' : ' (not caught up)'}; ${p.sent} due, ${fmt(p.achievedRps)}/s answered, p50 ${fmt(p.p50Ms, 2)} ms, p99 ${fmt(p.p99Ms, 2)} ms, max ${fmt(p.maxMs, 1)} ms, Inlet-side p99 ${Number.isFinite(p.serverP99Ms) ? `≤ ${p.serverP99Ms}` : '—'} ms, peak RSS ${fmt(p.rssMiB)} MiB, errors ${p.errors}`,
          );
          if (p.errors > 0) notes.push(`${spec.name}, paced: ${p.errors} errors or non-2xx answers.`);
          paced.set(spec.name, p);
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    if (typeof pgDb !== 'string') await pgDb.drop();
    await receiver.stop();
  }

  let bigBodies: BigBodyMeasurement | undefined;
  if (BIG_BODIES) {
    log(`big bodies: ${BIG_BODY_CLIENTS} clients, ${BIG_BODY_BYTES} B each, ${SECONDS} s`);
    spawnSync('sync');
    bigBodies = await measureBigBodies(work);
    if (bigBodies !== undefined) {
      const b = bigBodies;
      log(
        `  peak RSS ${fmt(b.rssMiB)} MiB, ${fmt(b.stored / b.seconds, 1)} stored/s, answers ${statusList(b.statuses)}, ${b.noAnswer} without an answer, in-flight bodies at most ${fmt(b.maxHeldMiB, 1)} MiB`,
      );
    }
  }

  m.load += `; ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} at the end`;
  const summary = [...results.entries()].map(([name, runs]) => ({
    name,
    rounds: runs.length,
    rps: median(runs.map((r) => r.rps)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    rssMiB: Math.max(...runs.map((r) => r.rssMiB)),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    cpuUs: median(runs.map((r) => r.cpuUsPerRequest)),
    postgresCpuUs: median(runs.map((r) => r.postgresCpuUsPerRequest ?? NaN)),
    serverP99Ms: Math.max(...runs.map((r) => r.serverP99Ms ?? NaN)),
    all: runs.map((r) => Math.round(r.rps)),
  }));
  const bare = summary.find((s) => s.name === 'bare node:http')?.rps ?? NaN;
  const rpsOf = (name: string | undefined) => summary.find((s) => s.name === name)?.rps ?? NaN;
  /** req/s ÷ the floor on the same database, or — for a line that has none. */
  const overFloor = (name: string, rps: number) => {
    const floor = floorOf(name);
    return floor === undefined ? '—' : fmt(rps / rpsOf(floor), 2);
  };
  const rows = summary.map(
    (s) =>
      `| ${s.name} | ${fmt(s.rps)} | ${s.all.join(', ')} | ${fmt(s.rps / bare, 2)} | ${overFloor(s.name, s.rps)} | ${fmt(s.cpuUs)} | ${Number.isFinite(s.postgresCpuUs) ? fmt(s.postgresCpuUs) : '—'} | ${fmt(s.p50Ms, 2)} | ${fmt(s.p99Ms, 2)} | ${Number.isFinite(s.serverP99Ms) ? `≤ ${s.serverP99Ms}` : '—'} | ${fmt(s.rssMiB)} | ${s.errors} |`,
  );
  const command = `npm run bench${env.INLET_BENCH_SECONDS ? ` (INLET_BENCH_SECONDS=${SECONDS})` : ''}`;
  const report = [
    `Run ${startedAt.toISOString()} with \`${command}\`: each server started fresh, ${WARMUP_SECONDS} s warm-up then ${SECONDS} s measured with \`wrk -t1 -c${CONNECTIONS} -d${SECONDS}s\` over loopback, servers alternated, ${ROUNDS} rounds, medians (peak RSS: the largest VmHWM). Every server gets the same requests (pre-formatted in wrk, so the load generator costs the same for all): Replicate-style prediction bodies of ≈ 1.6 KB with the three \`webhook-*\` headers; each Inlet request is a distinct delivery, validly signed just before its run (three per prediction: starting, processing, succeeded). "Inlet-side p99" is read from Inlet's own \`inlet_webhook_duration_seconds\` histogram (request received → answer; the bucket bound). Server CPU counts every thread of the server process; on PostgreSQL lines, the database server's own processes (same machine) are the next column. The floors (\`bench/floor-server.ts\`, not Inlet) verify, \`JSON.parse\` and insert one row per delivery in a group commit and answer once it is durable: on SQLite with Inlet's own WAL sync and checkpoints, on PostgreSQL one multi-row \`INSERT … ON CONFLICT DO NOTHING\` per batch, up to 4 batches at once; "× its floor" is an Inlet line's req/s over the floor on its own database. Inlet runs with its defaults: JSON logs at info to a file, SQLite in WAL mode, the WAL fdatasynced after each group commit and before its 200s (Inlet's own sync, off the event loop).`,
    '',
    '| machine | |',
    '| --- | --- |',
    ...Object.entries(m).map(([k, v]) => `| ${k} | ${v} |`),
    '',
    '| server | req/s (median) | req/s per round | × bare node:http | × its floor | server CPU µs/request | PostgreSQL CPU µs/request | p50 ms | p99 ms | Inlet-side p99 ms (worst round) | peak RSS MiB | errors |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ];
  if (BASELINE_BIN !== undefined) {
    const rps = (name: string) => summary.find((s) => s.name === name)?.rps ?? NaN;
    const ratio = (mine: string, theirs: string) =>
      `${fmt(rps(mine) / rps(theirs), 2)}× (${fmt(rps(mine))} ÷ ${fmt(rps(theirs))} req/s)`;
    report.push(
      `This build ÷ the baseline build, same rounds: SQLite ${ratio('Inlet, SQLite', 'baseline build, SQLite')}; PostgreSQL ${ratio('Inlet, PostgreSQL', 'baseline build, PostgreSQL')}.`,
      '',
    );
  }
  if (paced.size > 0) {
    report.push(
      `Paced: each line started fresh again, then a warm-up of at least ${PACED_WARMUP_SECONDS} s that lasts until the server has kept up with the load for ${KEPT_UP_MS / 1000} s on end (all that time, no request due more than ${CAUGHT_UP_MS} ms before still unanswered; at most ${PACED_MAX_WARMUP_SECONDS} s, "not caught up" if it ended there), then ${PACED_SECONDS} s measured at a steady ${PACED_RATE} deliveries/s, open-loop (\`bench/paced.ts\`, in a process of its own: \`node:http\` with keep-alive, at most ${CONNECTIONS} sockets; every 1 ms it sends the requests due by the clock, never waiting for answers, and each latency runs from when its request was due, so a stall is charged to every request queued behind it). Deliveries of the same kind as above, each distinct, all signed before the clock starts, from 1,000 predictions at once (each sends its next delivery half a second after its last, as ~1,000 streaming predictions would). The sender runs on the same two cores as the server: the bare node:http line (no verify, no database) is what the sender and the machine alone add to every line. "answered/s": 2xx answers of the window ÷ the time to the last of them.`,
      '',
      '| server | warm-up s | requests | answered/s | p50 ms | p99 ms | max ms | Inlet-side p99 ms | peak RSS MiB | errors |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...[...paced.entries()].map(
        ([name, p]) =>
          `| ${name} | ${fmt(p.warmedUpSeconds, 1)}${p.caughtUp ? '' : ' (not caught up)'} | ${p.sent} | ${fmt(p.achievedRps)} | ${fmt(p.p50Ms, 2)} | ${fmt(p.p99Ms, 2)} | ${fmt(p.maxMs, 1)} | ${Number.isFinite(p.serverP99Ms) ? `≤ ${p.serverP99Ms}` : '—'} | ${fmt(p.rssMiB)} | ${p.errors} |`,
      ),
      '',
    );
  }
  if (bigBodies !== undefined) {
    const b = bigBodies;
    report.push(
      `Big bodies: \`inlet serve\` on a fresh SQLite file, ${BIG_BODY_CLIENTS} clients at once sending for ${SECONDS} s (the last answer ${fmt(b.seconds, 1)} s after the start), each POSTing validly signed deliveries of ${BIG_BODY_BYTES.toLocaleString('en-US')} bytes (Inlet's default \`--max-body\` is ${SETTING_DEFAULTS.maxBodyBytes.toLocaleString('en-US')}) back to back, and a refused one again after 100 ms (\`bench/big-bodies.ts\`). ${INFLIGHT_BOUND}`,
      '',
      '| peak RSS MiB | stored/s | answers | ended without an answer | request bodies held, most seen (sampled every 200 ms) |',
      '| ---: | ---: | --- | ---: | ---: |',
      `| ${fmt(b.rssMiB)} | ${fmt(b.stored / b.seconds, 1)} | ${statusList(b.statuses)} | ${b.noAnswer} | ${fmt(b.maxHeldMiB, 1)} MiB of ${fmt(SETTING_DEFAULTS.maxInflightBytes / 2 ** 20)} |`,
      '',
    );
  }
  if (scale !== undefined) {
    report.push(
      `Scale check: ${SCALE_DELIVERIES.toLocaleString('en-US')} deliveries (${Math.round(SCALE_DELIVERIES / 3).toLocaleString('en-US')} predictions, ${MODELS.length} models) bulk-loaded through the store's own commit path in ${fmt(scale.loadSeconds, 1)} s (database ${scale.dbMiB} MiB), then \`GET\` each list 32 times (first 2 not counted) on the idle server, before the rounds; the line "${SCALE_NAME}" above is ingest into that database in the same rounds as the empty one's (each round adds its deliveries):`,
      '',
      '| query | p50 ms | max ms | rows |',
      '| --- | ---: | ---: | ---: |',
      ...scale.queries.map(
        (q) => `| \`${q.url}\` (${q.name}) | ${fmt(q.p50Ms, 2)} | ${fmt(q.maxMs, 2)} | ${q.rows} |`,
      ),
      '',
    );
  }
  const row = (name: string) => summary.find((s) => s.name === name);
  const sqlite = row('Inlet, SQLite');
  const withDestinations = row(DESTINATIONS_NAME);
  const destinationRuns = results.get(DESTINATIONS_NAME) ?? [];
  const drain =
    destinationRuns.length === 0 ? NaN : median(destinationRuns.map((r) => r.drainSeconds ?? NaN));
  const deliveredPerRun =
    destinationRuns.length === 0 ? NaN : median(destinationRuns.map((r) => r.delivered ?? NaN));
  const postgres = row('Inlet, PostgreSQL');
  const verdict = (ok: boolean | undefined) =>
    ok === undefined ? 'not measured' : ok ? 'met' : '**missed**';
  /** A figure against its target; not measured when the figure is missing (a line skipped). */
  const judge = (value: number, ok: (value: number) => boolean) =>
    verdict(Number.isFinite(value) ? ok(value) : undefined);
  const ratio = (a: number, b: number) => `${fmt(a / b, 2)} × (${fmt(a)} ÷ ${fmt(b)} req/s)`;
  const sqliteRps = sqlite?.rps ?? NaN;
  const postgresRps = postgres?.rps ?? NaN;
  const sqliteFloor = rpsOf(FLOOR_SQLITE);
  const postgresFloor = rpsOf(FLOOR_POSTGRES);
  const worstApi = scale === undefined ? NaN : Math.max(...scale.queries.map((q) => q.p50Ms));
  const scaleRps = rpsOf(SCALE_NAME);
  // The paced targets are stated at 2,000/s: another rate measures something else.
  const pacedAtTarget = (name: string) => (PACED_RATE === 2000 ? paced.get(name) : undefined);
  const pacedRow = (name: string, database: string, limitMs: number) => {
    const p = pacedAtTarget(name);
    const worst = p === undefined || p.errors > 0 ? NaN : Math.max(p.p99Ms, p.serverP99Ms);
    const measured =
      p === undefined
        ? 'n/a'
        : `${fmt(p.p99Ms, 2)} / ${Number.isFinite(p.serverP99Ms) ? `≤ ${p.serverP99Ms}` : 'n/a'} ms (${fmt(p.achievedRps)}/s answered, ${p.errors} errors)`;
    const ok = p === undefined ? 'not measured' : judge(worst, (ms) => ms <= limitMs);
    return `| at 2,000 deliveries/s paced, p99 ≤ ${limitMs} ms on ${database} (client / Inlet-side) | ${measured} | ${ok} |`;
  };
  // Every Inlet line of this build: saturated, paced, a million stored.
  const inletPeaks = [
    ...summary.filter((s) => s.name.startsWith('Inlet')).map((s) => s.rssMiB),
    ...[...paced.entries()].filter(([name]) => name.startsWith('Inlet')).map(([, p]) => p.rssMiB),
  ].filter(Number.isFinite);
  const peakRss = inletPeaks.length === 0 ? NaN : Math.max(...inletPeaks);
  const stored = SCALE_DELIVERIES.toLocaleString('en-US');
  report.push(
    '| target | measured | |',
    '| --- | --- | --- |',
    `| Inlet on SQLite ≥ 0.75 × its floor | ${ratio(sqliteRps, sqliteFloor)} | ${judge(sqliteRps / sqliteFloor, (r) => r >= 0.75)} |`,
    `| Inlet on SQLite, server CPU ≤ 110 µs per delivery | ${fmt(sqlite?.cpuUs ?? NaN)} µs | ${judge(sqlite?.cpuUs ?? NaN, (us) => us <= 110)} |`,
    `| Inlet on PostgreSQL ≥ 0.75 × its floor | ${ratio(postgresRps, postgresFloor)} | ${judge(postgresRps / postgresFloor, (r) => r >= 0.75)} |`,
    `| Inlet on PostgreSQL ≥ 0.25 × bare node:http | ${ratio(postgresRps, bare)} | ${judge(postgresRps / bare, (r) => r >= 0.25)} |`,
    `| with 2 destinations, ingest ≥ 0.90 × no destinations (same run) | ${fmt((withDestinations?.rps ?? NaN) / sqliteRps, 2)} × (${fmt(deliveredPerRun)} messages delivered per round, all pending done ${fmt(drain, 1)} s after the load stopped) | ${judge((withDestinations?.rps ?? NaN) / sqliteRps, (r) => r >= 0.9)} |`,
    pacedRow('Inlet, SQLite', 'SQLite', 5),
    pacedRow('Inlet, PostgreSQL', 'PostgreSQL', 10),
    `| with ${stored} stored, ingest within 10 % of the empty database (≥ 0.90 ×) | ${ratio(scaleRps, sqliteRps)} | ${judge(scaleRps / sqliteRps, (r) => r >= 0.9)} |`,
    `| with ${stored} stored, list API ≤ 20 ms (worst median) | ${fmt(worstApi, 2)} ms | ${judge(worstApi, (ms) => ms <= 20)} |`,
    `| peak RSS ≤ 150 MB under the bench (SQLite / PostgreSQL / largest of every Inlet line) | ${fmt(sqlite?.rssMiB ?? NaN)} / ${fmt(postgres?.rssMiB ?? NaN)} / ${fmt(peakRss)} MiB | ${judge(peakRss, (mib) => mib * 1.048576 <= 150)} |`,
    bigBodyRow(bigBodies),
    '',
  );
  if (notes.length > 0) report.push(...notes.map((n) => `- ${n}`), '');

  const text = report.join('\n');
  log('\n' + text);
  if (WRITE_DOCS) {
    const docPath = join(ROOT, 'docs/benchmarks.md');
    const start = '<!-- bench:results:start -->';
    const end = '<!-- bench:results:end -->';
    const doc = existsSync(docPath) ? readFileSync(docPath, 'utf8') : `# Benchmarks\n\n${start}\n${end}\n`;
    const i = doc.indexOf(start);
    const j = doc.indexOf(end);
    const next =
      i >= 0 && j > i
        ? `${doc.slice(0, i + start.length)}\n${text}\n${doc.slice(j)}`
        : `${doc}\n${start}\n${text}\n${end}\n`;
    writeFileSync(docPath, next);
    log(`wrote ${docPath}`);
  }
  rmSync(work, { recursive: true, force: true });
}

await main();
