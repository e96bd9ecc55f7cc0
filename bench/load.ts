/**
 * Load generator for the benchmark: a separate process that POSTs Zabbix
 * webhook bodies over loopback and reports the 202 latencies as JSON on stdout.
 * Usage: node dist/bench/load.js '<json job>'
 * The long run reads commands from stdin instead, one JSON line each
 * ({"send": N}), and answers each with one LongrunResult line.
 */
import http from 'node:http';
import { createInterface } from 'node:readline';

export type LoadJob =
  | { mode: 'rate'; url: string; token: string; rate: number; seconds: number; firstEventId: number; warmupSeconds?: number }
  | { mode: 'saturate'; url: string; token: string; connections: number; seconds: number; firstEventId: number }
  | { mode: 'storm'; url: string; token: string; fingerprints: number; events: number; seconds: number; firstEventId: number; hostPrefix?: string }
  | { mode: 'longrun'; url: string; token: string; fingerprints: number; openTarget: number; connections: number; seed: number };

export interface LoadResult {
  sent: number;
  accepted: number;
  failed: number;
  seconds: number;
  latenciesMs: { p50: number; p99: number; max: number };
  /** CPU seconds the load generator itself used, warm-up included (it shares the machine's cores with the server). */
  loadCpuSeconds?: number;
}

export interface LongrunResult extends LoadResult {
  /** 202 answers that said "duplicate" (redeliveries). */
  duplicates: number;
  kinds: { problem: number; update: number; recovery: number; redelivery: number };
  /** Incidents open in Zabbix's eyes at the end of this step. */
  open: number;
  /** Fingerprints that have had at least one problem so far. */
  touched: number;
}

/** Connections are kept alive and bounded, as a real client's pool would be. */
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(process.env.BENCH_SOCKETS ?? 64) });

export function body(host: string, triggerId: string, eventId: number, kind: 'problem' | 'recovery' | 'update', seq = 0): string {
  const d = new Date();
  const date = d.toISOString().slice(0, 10).replace(/-/g, '.');
  const time = d.toISOString().slice(11, 19);
  return JSON.stringify({
    event_id: String(eventId),
    event_value: kind === 'recovery' ? '0' : '1',
    event_source: '0',
    event_name: `High CPU utilization on ${host}`,
    event_update_status: kind === 'update' ? '1' : '0',
    event_update_action: kind === 'update' ? 'commented' : '{EVENT.UPDATE.ACTION}',
    event_update_message: kind === 'update' ? `note ${seq}` : '{EVENT.UPDATE.MESSAGE}',
    event_update_date: kind === 'update' ? date : '{EVENT.UPDATE.DATE}',
    event_update_time: kind === 'update' ? time : '{EVENT.UPDATE.TIME}',
    event_recovery_id: kind === 'recovery' ? String(eventId + 1) : '{EVENT.RECOVERY.ID}',
    event_nseverity: '4',
    event_severity: 'High',
    event_tags: JSON.stringify([{ tag: 'component', value: 'cpu' }, { tag: 'scope', value: 'performance' }]),
    event_date: date,
    event_time: time,
    trigger_id: triggerId,
    trigger_name: `High CPU utilization on ${host}`,
    host_host: host,
    host_name: host,
    host_ip: '10.0.0.1',
    item_key: 'system.cpu.util',
    item_value: kind === 'recovery' ? '12 %' : '97 %',
    item_id: '44518',
    event_opdata: 'Current: 97 %',
    user_fullname: kind === 'update' ? 'Bench Operator' : '{USER.FULLNAME}',
  });
}

function post(url: string, token: string, payload: string): Promise<{ status: number; ms: number }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, 'Content-Length': Buffer.byteLength(payload) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
    });
    req.on('error', () => resolve({ status: 0, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
    req.end(payload);
  });
}

/** The answer's body too (the long run counts duplicates). */
function postRead(url: string, token: string, payload: string): Promise<{ status: number; ms: number; body: string }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, 'Content-Length': Buffer.byteLength(payload) } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Number(process.hrtime.bigint() - started) / 1e6, body }));
    });
    req.on('error', () => resolve({ status: 0, ms: Number(process.hrtime.bigint() - started) / 1e6, body: '' }));
    req.end(payload);
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function summarise(latencies: number[], failed: number, seconds: number): LoadResult {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    sent: latencies.length + failed,
    accepted: latencies.length,
    failed,
    seconds,
    latenciesMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? 0 },
  };
}

/**
 * A fixed rate of new problems across 500 hosts. The first `warmupSeconds`
 * run at the same rate but are not measured: a daemon in service is warm
 * (JIT-compiled, GLPI session open, tickets of its incidents created).
 */
async function rate(job: Extract<LoadJob, { mode: 'rate' }>): Promise<LoadResult> {
  const latencies: number[] = [];
  let failed = 0;
  const warmup = job.rate * (job.warmupSeconds ?? 0);
  const total = warmup + job.rate * job.seconds;
  const started = Date.now();
  let measuredFrom = started;
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / job.rate;
    const wait = due - Date.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    if (i === warmup) measuredFrom = Date.now();
    const id = job.firstEventId + i;
    const measured = i >= warmup;
    inflight.push(
      post(job.url, job.token, body(`rate-${id % 500}`, String(100_000 + (id % 500)), id, 'problem')).then((r) => {
        if (!measured) return;
        if (r.status === 202) latencies.push(r.ms);
        else failed++;
      }),
    );
  }
  await Promise.all(inflight);
  return summarise(latencies, failed, (Date.now() - measuredFrom) / 1000);
}

async function saturate(job: Extract<LoadJob, { mode: 'saturate' }>): Promise<LoadResult> {
  const latencies: number[] = [];
  let failed = 0;
  let next = job.firstEventId;
  const started = Date.now();
  const deadline = started + job.seconds * 1000;
  await Promise.all(
    Array.from({ length: job.connections }, async () => {
      while (Date.now() < deadline) {
        const id = next++;
        const r = await post(job.url, job.token, body(`sat-${id % 1000}`, String(200_000 + (id % 1000)), id, 'problem'));
        if (r.status === 202) latencies.push(r.ms);
        else failed++;
      }
    }),
  );
  return summarise(latencies, failed, (Date.now() - started) / 1000);
}

/**
 * A storm: `events` webhooks over `seconds` across `fingerprints` incidents,
 * each lane (fingerprint) in order as Zabbix sends them: problem, a
 * redelivery, sometimes an operator note, recovery, and again (flapping).
 */
async function storm(job: Extract<LoadJob, { mode: 'storm' }>): Promise<LoadResult> {
  const latencies: number[] = [];
  let failed = 0;
  const perLane = Math.floor(job.events / job.fingerprints);
  const interval = (job.seconds * 1000) / perLane;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: job.fingerprints }, async (_v, lane) => {
      const host = `${job.hostPrefix ?? 'storm-'}${lane}`;
      const trigger = String(300_000 + lane);
      let eventId = job.firstEventId + lane * 100_000;
      const offset = (lane / job.fingerprints) * interval;
      for (let i = 0; i < perLane; i++) {
        const step = i % 4;
        if (step === 0) eventId += 2;
        const kind = step === 3 ? 'recovery' : step === 2 && i % 8 === 2 ? 'update' : 'problem';
        const due = started + offset + i * interval;
        const wait = due - Date.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        // A failed delivery is retried, as Zabbix would.
        for (let attempt = 0; attempt < 20; attempt++) {
          const r = await post(job.url, job.token, body(host, trigger, eventId, kind, i));
          if (r.status === 202) {
            latencies.push(r.ms);
            break;
          }
          failed++;
          await new Promise((res) => setTimeout(res, 100));
        }
      }
    }),
  );
  return summarise(latencies, failed, (Date.now() - started) / 1000);
}

/** Small, fast, seeded PRNG (mulberry32): the same seed gives the same choices. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type LongrunKind = 'problem' | 'update' | 'recovery' | 'redelivery';

/**
 * The long run's alert stream over `fingerprints` incidents (10 triggers per
 * host), the way a large Zabbix sends it over months: about `openTarget`
 * problems open at a time; each open problem gets operator updates (20 %),
 * a redelivery of its problem (Zabbix retrying, 10 %) and its recovery
 * (70 %); a recovered fingerprint fails again later with a new event.
 * Per incident, in order: the next alert of an incident goes out only once
 * the previous one was answered. Memory: a few bytes per fingerprint.
 */
class LongrunStream {
  readonly #rng: () => number;
  /** 0: recovered, 1: problem open, 2: an alert in flight. */
  readonly #state: Uint8Array;
  readonly #event: Float64Array;
  readonly #idleOpen: number[] = [];
  readonly #slot: Int32Array;
  readonly #hosts: number;
  #open = 0;
  #touched = 0;
  #nextEvent = 1;
  #seq = 0;
  readonly #seen: Uint8Array;

  constructor(
    readonly fingerprints: number,
    readonly openTarget: number,
    seed: number,
  ) {
    this.#rng = prng(seed);
    this.#state = new Uint8Array(fingerprints);
    this.#seen = new Uint8Array(fingerprints);
    this.#event = new Float64Array(fingerprints);
    this.#slot = new Int32Array(fingerprints).fill(-1);
    this.#hosts = Math.max(1, Math.ceil(fingerprints / 10));
  }

  get open(): number {
    return this.#open;
  }

  get touched(): number {
    return this.#touched;
  }

  #push(fp: number): void {
    this.#slot[fp] = this.#idleOpen.length;
    this.#idleOpen.push(fp);
  }

  #take(i: number): number {
    const fp = this.#idleOpen[i]!;
    const last = this.#idleOpen.pop()!;
    if (last !== fp) {
      this.#idleOpen[i] = last;
      this.#slot[last] = i;
    }
    this.#slot[fp] = -1;
    return fp;
  }

  /** The next alert and what to do once it was answered; undefined while every candidate is in flight. */
  next(): { kind: LongrunKind; payload: string; done: () => void } | undefined {
    const rng = this.#rng;
    const wantNew = this.#idleOpen.length === 0 || rng() < (this.#open < this.openTarget ? 0.55 : 0.3);
    if (wantNew && this.#open < this.fingerprints) {
      for (let tries = 0; tries < 64; tries++) {
        const fp = Math.floor(rng() * this.fingerprints);
        if (this.#state[fp] !== 0) continue;
        this.#state[fp] = 2;
        this.#open++;
        if (this.#seen[fp] === 0) {
          this.#seen[fp] = 1;
          this.#touched++;
        }
        const eventId = this.#nextEvent;
        this.#nextEvent += 2;
        this.#event[fp] = eventId;
        return { kind: 'problem', payload: this.#body(fp, eventId, 'problem'), done: () => this.#idle(fp) };
      }
    }
    if (this.#idleOpen.length === 0) return undefined;
    const fp = this.#take(Math.floor(rng() * this.#idleOpen.length));
    this.#state[fp] = 2;
    const r = rng();
    const eventId = this.#event[fp]!;
    if (r < 0.7) {
      return {
        kind: 'recovery',
        payload: this.#body(fp, eventId, 'recovery'),
        done: () => {
          this.#state[fp] = 0;
          this.#open--;
        },
      };
    }
    if (r < 0.9) return { kind: 'update', payload: this.#body(fp, eventId, 'update'), done: () => this.#idle(fp) };
    return { kind: 'redelivery', payload: this.#body(fp, eventId, 'problem'), done: () => this.#idle(fp) };
  }

  #idle(fp: number): void {
    this.#state[fp] = 1;
    this.#push(fp);
  }

  #body(fp: number, eventId: number, kind: 'problem' | 'update' | 'recovery'): string {
    return body(`lr-${fp % this.#hosts}`, String(10_000_000 + fp), eventId, kind, ++this.#seq);
  }
}

/** Send `count` alerts of the stream over the job's connections, as fast as the bridge answers. */
async function longrunStep(job: Extract<LoadJob, { mode: 'longrun' }>, stream: LongrunStream, count: number): Promise<LongrunResult> {
  const latencies: number[] = [];
  let failed = 0;
  let duplicates = 0;
  let started = 0;
  const kinds = { problem: 0, update: 0, recovery: 0, redelivery: 0 };
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: job.connections }, async () => {
      while (started < count) {
        const a = stream.next();
        if (!a) {
          await new Promise((r) => setTimeout(r, 1));
          continue;
        }
        started++;
        kinds[a.kind]++;
        // A refused delivery is retried, as Zabbix would; the incident waits for it.
        for (let attempt = 0; ; attempt++) {
          const r = await postRead(job.url, job.token, a.payload);
          if (r.status === 202) {
            latencies.push(r.ms);
            if (r.body.includes('"duplicate"')) duplicates++;
            break;
          }
          failed++;
          if (attempt >= 20) break;
          await new Promise((res) => setTimeout(res, 100));
        }
        a.done();
      }
    }),
  );
  return { ...summarise(latencies, failed, (Date.now() - t0) / 1000), duplicates, kinds, open: stream.open, touched: stream.touched };
}

async function longrun(job: Extract<LoadJob, { mode: 'longrun' }>): Promise<void> {
  const stream = new LongrunStream(job.fingerprints, job.openTarget, job.seed);
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line) as { send?: number };
    if (cmd.send === undefined) break;
    process.stdout.write(`${JSON.stringify(await longrunStep(job, stream, cmd.send))}\n`);
  }
}

/** Open the pool's connections before measuring, as a long-running client would have them open. */
async function warmUp(url: string): Promise<void> {
  const health = url.replace(/\/zabbix\/webhook$/, '/healthz');
  const sockets = Number(process.env.BENCH_SOCKETS ?? 64);
  await Promise.all(
    Array.from(
      { length: sockets },
      () =>
        new Promise<void>((resolve) => {
          http.get(health, { agent }, (res) => {
            res.resume();
            res.on('end', () => resolve());
          }).on('error', () => resolve());
        }),
    ),
  );
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as LoadJob;
  await warmUp(job.url);
  if (job.mode === 'longrun') {
    await longrun(job);
    agent.destroy();
    return;
  }
  const result = job.mode === 'rate' ? await rate(job) : job.mode === 'saturate' ? await saturate(job) : await storm(job);
  const cpu = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ ...result, loadCpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`);
  agent.destroy();
}

if (process.argv[1]?.endsWith('load.js')) void main();
