/**
 * The bridge's processing pipeline in this process, wired the way app.ts and
 * threads/processing-worker.ts wire it: the intake on its own connection
 * (inboxCheckpoint 'external'), the processor and dispatcher on another,
 * the real GlpiClient against the real fake GLPI. THE ONE PLACE that knows
 * constructor signatures: when they change, only this file needs fixing.
 *
 * A "generation" (Bridge) is one run of the daemon. kill() is kill -9: from
 * that instant its objects are inert (every store call throws, GLPI calls
 * not yet sent are never sent, answers that arrive are never seen, no
 * answer leaves for Zabbix), its SQLite handles are closed without the
 * clean-stop mark, and requests already sent to GLPI still land. A power
 * cut is a kill followed by restoring the state file (bridge.db and its WAL)
 * to a copy taken when SQLite had fsynced it; the inbox keeps everything.
 */
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Clock } from '../../src/adapters/clock.js';
import type { GlpiConnection } from '../../src/adapters/glpi/connection.js';
import { ensureMarkerKey } from '../../src/adapters/marker-key.js';
import { SqliteStore } from '../../src/adapters/store/sqlite/index.js';
import type { Accepted } from '../../src/core/ports.js';
import { parseWebhookBody } from '../../src/adapters/zabbix/webhook-body.js';
import { glpiClient } from '../../src/composition/clients.js';
import { processingSettings, storeFile } from '../../src/composition/from-config.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { normalise } from '../../src/core/normalise.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { Dispatcher } from '../../src/services/dispatcher.js';
import { Intake } from '../../src/services/intake.js';
import { Processor } from '../../src/services/processor.js';
import type { PowerCut, Settings } from './case.js';
import { nodeDigests } from '../../src/adapters/digests.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RULES = join(ROOT, 'config', 'rules.example.yaml');

/** What a late callback of a killed generation gets. */
export class Killed extends Error {
  constructor() {
    super('the bridge process was killed');
    this.name = 'Killed';
  }
}

/** Model time: real time plus jumps. Shared by every generation of a case (Zabbix's clock too). */
export class ModelClock implements Clock {
  offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  advance(ms: number): void {
    this.offset += ms;
  }
}

export interface KillOrder {
  readonly why: string;
  readonly power?: PowerCut;
}

/** Called at crash points; answering a KillOrder kills the generation right there. */
export interface Hooks {
  /** Around each GLPI client call ('before': not sent yet; 'after': GLPI answered, the bridge has not seen it). */
  glpi(op: string, when: 'before' | 'after'): KillOrder | undefined;
  /** After each commit to the state file by the processing side. */
  commit(): KillOrder | undefined;
  /** After the intake committed a batch of deliveries, before they are on disk and answered. */
  accept(): KillOrder | undefined;
  /** The generation died (trace). */
  killed(gen: number, order: KillOrder): void;
}

/** Snapshot of the state file (and WAL) at a moment its content was on disk. */
interface Snap {
  readonly db: Buffer;
  readonly wal: Buffer | undefined;
  readonly label: string;
  /** Order taken in (a flush's snapshot becomes the fsync point only if nothing later did). */
  readonly seq: number;
}

/**
 * What the disk holds for the state file after a power cut. Snapshots are
 * taken after any commit that SQLite fsynced: a commit made with
 * synchronous=FULL (the store's 'power-safe' durability: recordStart, requeueRunning,
 * ...) or a checkpoint (seen in the WAL index); and what the file held when
 * the store was asked to flush its WAL (claimsOnDisk), once that flush is done. Restoring to a later commit
 * (not fsynced) is also a state a power cut can leave: the WAL keeps a valid
 * prefix of what was written.
 */
export class Disk {
  #fsync: Snap | undefined;
  /** Snapshots of the first commits after the last fsync (1st, 2nd, ...). */
  #after: Snap[] = [];
  #shmHeader = '';
  static readonly AFTER_KEPT = 6;

  constructor(readonly file: string) {}

  #take(label: string): Snap {
    const wal = `${this.file}-wal`;
    return { db: readFileSync(this.file), wal: existsSync(wal) ? readFileSync(wal) : undefined, label, seq: ++this.#seq };
  }
  #seq = 0;

  /**
   * The store asked for its WAL to be flushed (claimsOnDisk: an fdatasync off the thread): what the file holds
   * now is on disk once that flush is done. Returns what to call then (the generation still alive).
   */
  flushing(label: string): () => void {
    const snap = this.#take(label);
    return () => {
      if (this.#fsync && this.#fsync.seq > snap.seq) return;
      this.#fsync = snap;
      this.#after = [];
    };
  }

  /** The WAL index's checkpoint state (salts, nBackfill): changes when SQLite checkpointed, which fsyncs. */
  #walIndex(): string {
    const shm = `${this.file}-shm`;
    if (!existsSync(shm)) return '';
    const fd = openSync(shm, 'r');
    try {
      const b = Buffer.alloc(136);
      const n = readSync(fd, b, 0, 136, 0);
      return n < 136 ? '' : `${b.subarray(32, 40).toString('hex')}:${b.subarray(96, 100).toString('hex')}`;
    } finally {
      closeSync(fd);
    }
  }

  /** After a commit by the processing side: was it fsynced? */
  committed(db: { pragma(s: string, o: { simple: true }): unknown }, label: string): void {
    const full = db.pragma('synchronous', { simple: true }) === 2;
    const index = this.#walIndex();
    const checkpointed = index !== this.#shmHeader && this.#shmHeader !== '';
    this.#shmHeader = index;
    if (full || checkpointed || this.#fsync === undefined) {
      this.#fsync = this.#take(`${label} (${full ? 'synchronous=FULL' : checkpointed ? 'checkpoint' : 'first commit'})`);
      this.#after = [];
    } else if (this.#after.length < Disk.AFTER_KEPT) {
      this.#after.push(this.#take(label));
    }
  }

  /** Called with every handle on the file closed. Returns what the disk now holds, in words. */
  restore(cut: PowerCut): string {
    const snap = (cut.restore === 'commit' ? this.#after[Math.min(cut.commits, this.#after.length) - 1] : undefined) ?? this.#fsync;
    if (!snap) return 'no snapshot yet: state file kept';
    writeFileSync(this.file, snap.db);
    const wal = `${this.file}-wal`;
    if (snap.wal) writeFileSync(wal, snap.wal);
    else if (existsSync(wal)) unlinkSync(wal);
    // The WAL index is rebuilt from the WAL at the next open.
    if (existsSync(`${this.file}-shm`)) unlinkSync(`${this.file}-shm`);
    this.#after = [];
    this.#shmHeader = '';
    return `state file restored to ${snap.label}`;
  }
}

export interface WorldOptions {
  readonly settings: Settings;
  readonly glpiUrl: string;
  readonly clock: ModelClock;
  readonly hooks: Hooks;
  /** pino level of the bridge's log (kept in memory, shown on failure). */
  readonly logLevel?: string;
}

/** One case's data directory and configuration; starts generations of the bridge on it. */
export class World {
  readonly dir: string;
  readonly config: Config;
  readonly disk: Disk;
  readonly logs: string[] = [];
  readonly logger: Logger;
  gen = 0;
  current: Bridge | undefined;

  constructor(readonly opt: WorldOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'zgb-model-'));
    const s = opt.settings;
    const file = join(this.dir, 'bridge.yaml');
    writeFileSync(
      file,
      [
        'listen: 127.0.0.1:0',
        `data_dir: ${this.dir}`,
        `log_level: ${opt.logLevel ?? 'info'}`,
        'store:',
        '  synchronous: full',
        'glpi:',
        `  url: ${opt.glpiUrl}`,
        '  user_token: user-token',
        '  timeout: 3s',
        `  max_concurrency: ${s.concurrency}`,
        `  recovery: ${s.recovery}`,
        'retry:',
        '  attempts: 2',
        '  min_delay: 2ms',
        '  max_delay: 8ms',
        '  backoff_cap: 40ms',
        'correlation:',
        '  fingerprint: [host, trigger]',
        '  hold_down: 0',
        '  reopen_window: 24h',
        `  coalesce_window: ${s.coalesceMs > 0 ? `${s.coalesceMs}ms` : 0}`,
        `rules_file: ${RULES}`,
      ].join('\n'),
    );
    this.config = loadConfig(file, {});
    this.disk = new Disk(storeFile(this.config));
    const logs = this.logs;
    this.logger = createLogger(opt.logLevel ?? 'info', {
      write(line: string) {
        logs.push(line);
        if (logs.length > 600) logs.splice(0, logs.length - 400);
      },
    });
  }

  get stateFile(): string {
    return storeFile(this.config);
  }

  /** Start the next generation on this folder (the previous one must be dead). */
  start(): Bridge {
    if (this.current && !this.current.dead) throw new Error('a generation is still running');
    this.gen++;
    this.current = new Bridge(this, this.gen);
    return this.current;
  }

  /** Kill whatever runs and remove the folder (kept when `keep`). */
  dispose(keep = false): void {
    this.current?.kill({ why: 'end of case' });
    if (!keep) rmSync(this.dir, { recursive: true, force: true });
  }
}

interface Life {
  dead: boolean;
  /** A kill is due at the end of this synchronous stretch: nothing new goes to GLPI. */
  dying: boolean;
}

/**
 * A store as a generation's objects see it: dead → every call throws Killed
 * (a read of the inbox answers nothing, so a stray processor timer stays
 * quiet; a sync answers a rejected promise). Alive → calls go through, and
 * `after` hears of each top-level call, with whether it wrote to the state file.
 */
function guardStore(real: SqliteStore, life: Life, after: (method: string, wroteState: boolean, result: unknown) => void): SqliteStore {
  const changes = real.db.prepare('SELECT total_changes() AS n').pluck();
  return new Proxy(real, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      const method = String(prop);
      return (...args: unknown[]) => {
        if (life.dead) {
          if (method === 'unprocessedDeliveries' || method === 'claimReady') return [];
          if (method === 'syncInbox') return Promise.reject(new Killed());
          throw new Killed();
        }
        const top = !target.db.inTransaction;
        const before = top ? (changes.get() as number) : 0;
        const result: unknown = (v as (...a: unknown[]) => unknown).apply(target, args);
        if (top && !life.dead && target.db.open) after(method, (changes.get() as number) !== before, result);
        return result;
      };
    },
  });
}

/** The GLPI client as a generation sees it: nothing is sent once dead, and no answer is seen by a dead generation. */
function guardDesk(real: GlpiConnection, life: Life, hook: (op: string, when: 'before' | 'after') => boolean): GlpiConnection {
  return new Proxy(real, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      const op = String(prop);
      const async = (v as { constructor?: { name?: string } }).constructor?.name === 'AsyncFunction';
      if (!async) return (...args: unknown[]) => (v as (...a: unknown[]) => unknown).apply(target, args);
      return async (...args: unknown[]) => {
        if (life.dead || life.dying || hook(op, 'before')) throw new Killed();
        let result: unknown;
        try {
          result = await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } catch (e) {
          if (life.dead) throw new Killed();
          throw e;
        }
        if (life.dead || hook(op, 'after')) throw new Killed();
        return result;
      };
    },
  });
}

export interface Quiet {
  /** Deliveries in the inbox not decided on yet. */
  readonly undecided: number;
  readonly pending: number;
  readonly running: number;
  readonly dead: number;
  readonly inflight: number;
}

/** One run of the daemon (a process): intake, processor, dispatcher, GLPI client. */
export class Bridge {
  readonly #life: Life = { dead: false, dying: false };
  readonly #intakeReal: SqliteStore;
  readonly #procReal: SqliteStore;
  readonly #procStore: SqliteStore;
  readonly #intake: Intake;
  readonly #processor: Processor;
  readonly #dispatcher: Dispatcher;
  readonly #checkpointTimer: NodeJS.Timeout;
  readonly #world: World;

  constructor(world: World, readonly gen: number) {
    this.#world = world;
    const config = world.config;
    const hooks = world.opt.hooks;
    const clock = world.opt.clock;
    const logger = world.logger.child({ gen });
    const life = this.#life;
    const file = storeFile(config);
    let started = false;
    let dying: KillOrder | undefined;
    /**
     * Kill here: the process dies when the current synchronous stretch ends
     * (a microtask; during start, once started). Hooks run inside store and
     * GLPI client calls, and the caller's code after the call cannot be
     * stopped half-way in this process: it must not meet a dead store. Until
     * then nothing new goes to GLPI and no answer goes to Zabbix.
     */
    const killAt = (order: KillOrder | undefined): boolean => {
      if (!order || life.dead || dying) return false;
      dying = order;
      life.dying = true;
      if (started) queueMicrotask(() => this.kill(order));
      return true;
    };

    // Main thread (app.ts): the intake's connection.
    this.#intakeReal = new SqliteStore(file, { synchronous: config.store.synchronous, maxSizeBytes: config.store.max_size, inboxCheckpoint: 'external' });
    const intakeStore = guardStore(this.#intakeReal, life, (method) => {
      if (method === 'acceptDeliveries') killAt(hooks.accept());
    });
    const durableThrough = this.#intakeReal.lastDeliveryId();

    // Processing thread (processing-worker.ts): its own connection, the GLPI client, dispatcher and processor.
    this.#procReal = new SqliteStore(file, { synchronous: config.store.synchronous, maxSizeBytes: config.store.max_size });
    const procDb = this.#procReal.db;
    this.#procStore = guardStore(this.#procReal, life, (method, wrote, result) => {
      // Job claims are committed without a flush, then fdatasync'ed off the thread: on disk once that is done.
      if (method === 'claimsOnDisk') {
        const onDisk = world.disk.flushing(`gen ${gen} job claims flushed`);
        (result as Promise<void>).then(() => !life.dead && onDisk(), () => undefined);
      }
      if (!wrote) return;
      world.disk.committed(procDb, `gen ${gen} ${method}`);
      killAt(hooks.commit());
    });
    const metrics = createMetrics({ processMetrics: false });
    const glpi = guardDesk(glpiClient(config, logger.child({ component: 'glpi' }), metrics), life, (op, when) => killAt(hooks.glpi(op, when)));
    const settings = processingSettings(config, ensureMarkerKey(config.data_dir));
    this.#dispatcher = new Dispatcher(this.#procStore, glpi, clock, logger.child({ component: 'dispatcher' }), metrics, {
      concurrency: config.glpi.max_concurrency,
      quickRetries: config.retry.attempts,
      quickMinDelayMs: config.retry.min_delay,
      quickMaxDelayMs: config.retry.max_delay,
      minDelayMs: config.retry.min_delay,
      backoffCapMs: config.retry.backoff_cap,
      solutionTypeId: config.glpi.solution_type_id,
      // As in the worker: a closed ticket's new cycle is decided at once, and held creates wait for the decisions behind them.
      onTicketClosed: (job, ticketId) => processor.ticketClosed(job.fingerprint, job.cycle, ticketId),
      createHorizon: (now) => processor.decidedHorizon(now),
    });
    const dispatcher = this.#dispatcher;
    const processor: Processor = new Processor(this.#procStore, () => settings, clock, logger.child({ component: 'processor' }), metrics, () => dispatcher.wake());
    this.#processor = processor;
    // The intake's commits wake the processing side (a message to the worker thread in the daemon).
    this.#intake = new Intake(intakeStore, clock, nodeDigests, logger.child({ component: 'intake' }), metrics, (through) => {
      if (life.dead) return;
      processor.admit(through);
      processor.schedule();
    });
    this.#checkpointTimer = setInterval(() => {
      if (life.dead) return;
      try {
        this.#procStore.checkpointInbox();
      } catch {
        // as the worker: logged there, retried next tick
      }
    }, 25);
    dispatcher.start();
    processor.admit(durableThrough);
    processor.schedule();
    started = true;
    if (dying) this.kill(dying);
  }

  get dead(): boolean {
    return this.#life.dead;
  }

  /** POST /zabbix/webhook as the HTTP adapter does it; resolves with the 202's delivery id. Rejects when killed before answering. */
  async deliver(body: Record<string, string>): Promise<Accepted> {
    if (this.#life.dead || this.#life.dying) throw new Killed();
    const parsed = parseWebhookBody(body);
    if (!parsed.ok) throw new Error(`the model built a body the bridge refuses: ${parsed.message}`);
    const alert = normalise(parsed.event, 'webhook', this.#world.config.zabbix.timezone_offset_minutes);
    const accepted = await this.#intake.accept(alert);
    // A dead process sends no answer, even when its commit got to disk.
    if (this.#life.dead) throw new Killed();
    return accepted;
  }

  /** kill -9 (and the power cut, when ordered). */
  kill(order: KillOrder): void {
    if (this.#life.dead) return;
    this.#life.dead = true;
    clearInterval(this.#checkpointTimer);
    // Only stops its timers from claiming more work; in-flight jobs meet Killed at their next step.
    void this.#dispatcher.stop(0).catch(() => undefined);
    this.#procReal.close();
    this.#intakeReal.close();
    const restored = order.power ? this.#world.disk.restore(order.power) : undefined;
    this.#world.opt.hooks.killed(this.gen, restored ? { ...order, why: `${order.why}; ${restored}` } : order);
  }

  quiet(): Quiet {
    const s = this.#procReal.stats();
    return {
      undecided: Math.max(0, this.#intakeReal.lastDeliveryId() - this.#procReal.processedThrough()),
      pending: s.pending,
      running: s.running,
      dead: s.dead,
      inflight: this.#dispatcher.inflight,
    };
  }

  /** When the only work left waits for a retry time: let model time pass until then. */
  fastForward(): void {
    const due = this.#procReal.nextDueAt();
    const clock = this.#world.opt.clock;
    if (due !== undefined && due > clock.now()) clock.advance(due - clock.now() + 1);
    this.#dispatcher.wake();
    this.#processor.schedule();
  }

  /** What the daemon's timers do now and then: forget old deliveries and finished jobs. */
  housekeeping(): void {
    const now = this.#world.opt.clock.now();
    this.#intakeReal.pruneDeliveries(now, this.#world.config.store.retention);
    this.#processor.prune(now, this.#world.config.store.retention);
  }

  deadLetters(): string[] {
    return this.#procReal.jobs('dead').map((j) => `job ${j.id} ${j.type} (${j.fingerprint}): ${j.lastError ?? ''}`);
  }
}

/** Copy the folder aside (for a failing case). */
export function keepCopy(world: World): string {
  const to = mkdtempSync(join(tmpdir(), 'zgb-model-kept-'));
  for (const f of ['bridge.db', 'bridge.db-wal', 'bridge.inbox.db', 'bridge.inbox.db-wal']) {
    const from = join(world.dir, f);
    if (existsSync(from)) copyFileSync(from, join(to, f));
  }
  return to;
}
