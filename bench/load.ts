/**
 * Load generator for the benchmark: a separate process that POSTs Zabbix
 * webhook bodies over loopback and reports the 202 latencies as JSON on stdout.
 * Usage: node dist/bench/load.js '<json job>'
 */
import http from 'node:http';

export type LoadJob =
  | { mode: 'rate'; url: string; token: string; rate: number; seconds: number; firstEventId: number; warmupSeconds?: number }
  | { mode: 'saturate'; url: string; token: string; connections: number; seconds: number; firstEventId: number }
  | { mode: 'storm'; url: string; token: string; fingerprints: number; events: number; seconds: number; firstEventId: number };

export interface LoadResult {
  sent: number;
  accepted: number;
  failed: number;
  seconds: number;
  latenciesMs: { p50: number; p99: number; max: number };
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
      const host = `storm-${lane}`;
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
  const result = job.mode === 'rate' ? await rate(job) : job.mode === 'saturate' ? await saturate(job) : await storm(job);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  agent.destroy();
}

if (process.argv[1]?.endsWith('load.js')) void main();
