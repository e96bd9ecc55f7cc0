/**
 * Executes a model case: plays Zabbix (events happen, webhooks are sent,
 * retried until answered), GLPI's faults and the crashes, against a real
 * pipeline and the fake GLPI; then lets the bridge finish its work and hands
 * what GLPI ended with, and what Zabbix said, to the oracle.
 */
import { FakeGlpi, type FakeFollowup, type FakeSolution, type FakeTicket } from '../../src/glpi-fake/server.js';
import { describeCut, describeStep, describeTrigger, type CaseSpec, type OccSpec, type PowerCut, type Step, type Trigger } from './case.js';
import { Bridge, Killed, ModelClock, World, type Hooks, type KillOrder } from './pipeline.js';
import { webhookBody, type Body, type ZabbixEvent } from './zabbix.js';

/** What happened to one Zabbix occurrence's webhook. */
export interface OccFacts {
  readonly occ: OccSpec;
  /** Model time it happened in Zabbix (undefined: never happened, e.g. a shrunk case). */
  at?: number;
  body?: Body;
  /** Inbox id the bridge gave it (first answer seen; every answer must agree). */
  deliveryId?: number;
  /** Zabbix saw a 202 (no more retries). */
  answered: boolean;
}

export interface Outcome {
  readonly spec: CaseSpec;
  readonly occs: readonly OccFacts[];
  readonly events: ReadonlyMap<string, ZabbixEvent>;
  readonly tickets: readonly FakeTicket[];
  readonly followups: readonly FakeFollowup[];
  readonly solutions: readonly FakeSolution[];
  readonly deadLetters: readonly string[];
  /** Problems the harness saw on the way (ids that disagree, no quiescence, harness errors). */
  readonly anomalies: readonly string[];
  readonly trace: readonly string[];
  readonly logs: readonly string[];
  readonly kills: number;
  readonly ms: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Give up on a case that does not settle (a stuck queue is a finding, reported as such). */
const QUIESCE_TIMEOUT_MS = 20_000;
const MAX_KILLS = 12;

interface Armed {
  readonly trigger: Trigger;
  readonly power?: PowerCut;
  seen: number;
  fired: boolean;
}

export class CaseRun {
  readonly clock = new ModelClock();
  readonly trace: string[] = [];
  readonly anomalies: string[] = [];
  readonly #armed: Armed[] = [];
  readonly #occs: OccFacts[];
  readonly #events = new Map<string, ZabbixEvent>();
  #fake!: FakeGlpi;
  #world!: World;
  #bridge!: Bridge;
  #kills = 0;
  readonly #t0 = Date.now();

  constructor(readonly spec: CaseSpec, readonly opt: { logLevel?: string } = {}) {
    this.#occs = spec.occs.map((occ) => ({ occ, answered: false }));
    for (const e of spec.events) this.#events.set(e.id, { spec: e, severity: e.severity, acknowledged: false });
  }

  #log(line: string): void {
    const t = ((Date.now() - this.#t0) / 1000).toFixed(3).padStart(7);
    this.trace.push(`${t}s ${line}`);
  }

  #hooks(): Hooks {
    const fire = (match: (t: Trigger) => boolean): KillOrder | undefined => {
      if (this.#kills >= MAX_KILLS) return undefined;
      for (const a of this.#armed) {
        if (a.fired || !match(a.trigger)) continue;
        a.seen++;
        if (a.seen < a.trigger.nth) continue;
        a.fired = true;
        return { why: `${a.power ? 'POWER CUT' : 'kill -9'} ${describeTrigger(a.trigger)}`, ...(a.power ? { power: a.power } : {}) };
      }
      return undefined;
    };
    return {
      glpi: (op, when) => fire((t) => t.on === 'glpi' && t.op === op && t.when === when),
      commit: () => fire((t) => t.on === 'commit'),
      accept: () => fire((t) => t.on === 'accept'),
      killed: (gen, order) => {
        this.#kills++;
        this.#log(`   ✝ gen ${gen} dies: ${order.why}`);
      },
    };
  }

  /** The bridge is up (systemd restarts it at once after a crash). */
  #alive(): Bridge {
    if (this.#bridge.dead) {
      this.#bridge = this.#world.start();
      this.#log(`   ↻ gen ${this.#bridge.gen} starts`);
    }
    return this.#bridge;
  }

  async run(): Promise<Outcome> {
    this.#fake = new FakeGlpi({ userTokens: ['user-token'] });
    const url = await this.#fake.listen(0);
    this.#world = new World({ settings: this.spec.settings, glpiUrl: url, clock: this.clock, hooks: this.#hooks(), logLevel: this.opt.logLevel ?? 'info' });
    try {
      this.#bridge = this.#world.start();
      this.#log(`gen 1 starts (recovery ${this.spec.settings.recovery}, coalesce ${this.spec.settings.coalesceMs} ms, concurrency ${this.spec.settings.concurrency})`);
      for (const step of this.spec.steps) {
        this.#alive();
        await this.#step(step);
      }
      await this.#barrier('end of the Zabbix script');
      const deadLetters = await this.#quiesce();
      return {
        spec: this.spec,
        occs: this.#occs,
        events: this.#events,
        tickets: [...this.#fake.tickets.values()].map((t) => ({ ...t })),
        followups: this.#fake.followups.map((f) => ({ ...f })),
        solutions: this.#fake.solutions.map((s) => ({ ...s })),
        deadLetters,
        anomalies: this.anomalies,
        trace: this.trace,
        logs: this.#world.logs,
        kills: this.#kills,
        ms: Date.now() - this.#t0,
      };
    } finally {
      this.#world.dispose();
      await this.#fake.close();
    }
  }

  async #step(step: Step): Promise<void> {
    switch (step.t) {
      case 'occur':
        return this.#occur(step.occ);
      case 'send':
        return this.#send(step.occ, step.fate);
      case 'burst':
        this.#log(describeStep(this.spec, step));
        await Promise.all(step.sends.map((s) => this.#send(s.occ, s.fate, true)));
        return;
      case 'wait':
        this.#log(describeStep(this.spec, step));
        await sleep(step.ms);
        return;
      case 'kill':
        this.#log(describeStep(this.spec, step));
        if (this.#kills < MAX_KILLS) this.#bridge.kill({ why: step.power ? `POWER CUT (${describeCut(step.power)})` : 'kill -9', ...(step.power ? { power: step.power } : {}) });
        return;
      case 'arm':
        this.#log(describeStep(this.spec, step));
        this.#armed.push({ trigger: step.trigger, ...(step.power ? { power: step.power } : {}), seen: 0, fired: false });
        return;
      case 'faults':
        this.#log(describeStep(this.spec, step));
        this.#fake.setFaults(step.faults);
        return;
      case 'expire':
        this.#log(describeStep(this.spec, step));
        this.#fake.expireSessions();
        return;
      case 'jump':
        // Zabbix has given up or succeeded on every retry long before: deliver what is still unanswered first.
        await this.#barrier(`before the ${step.ms / 3_600_000} h jump`);
        if (!step.backlog) await this.#decided();
        this.clock.advance(step.ms);
        this.#log(describeStep(this.spec, step));
        try {
          this.#alive().housekeeping();
        } catch (e) {
          if (!(e instanceof Killed)) throw e;
        }
        return;
    }
  }

  /** Something happens in Zabbix: the event's state changes and the webhook body is fixed (retries send the same). */
  #occur(n: number): void {
    const f = this.#occs[n] as OccFacts;
    const o = f.occ;
    const ev = this.#events.get(o.ev);
    if (!ev) throw new Error(`occurrence ${n} of unknown event ${o.ev}`);
    const inc = this.spec.incidents[ev.spec.inc];
    if (!inc) throw new Error(`event ${o.ev} of unknown incident`);
    // A shrunk case may have lost the problem: an event must start with its problem.
    if (o.kind !== 'problem' && ev.problemAt === undefined) {
      this.#log(`(skipped: ${o.kind} of ev ${o.ev} before its problem happened)`);
      return;
    }
    const at = this.clock.now();
    f.at = at;
    switch (o.kind) {
      case 'problem':
        ev.problemAt = at;
        f.body = webhookBody(inc, ev, 'problem', at);
        break;
      case 'recovery':
        ev.recoveredAt = at;
        f.body = webhookBody(inc, ev, 'recovery', at);
        break;
      case 'update': {
        const from = ev.severity;
        if (o.update.ack) ev.acknowledged = true;
        if (o.update.severity !== undefined) ev.severity = o.update.severity;
        f.body = webhookBody(inc, ev, 'update', at, { spec: o.update, from });
        break;
      }
    }
    this.#log(describeStep(this.spec, { t: 'occur', occ: n }));
  }

  /** One webhook attempt. `fate` is what the network does to it. */
  async #send(n: number, fate: 'ok' | 'lost' | 'noanswer', inBurst = false): Promise<void> {
    const f = this.#occs[n] as OccFacts;
    if (!f.body) return;
    if (f.answered) return; // Zabbix stops retrying once answered
    const what = describeStep(this.spec, { t: 'send', occ: n, fate });
    if (!this.spec.early && f.occ.kind === 'update' && this.#occs.find((x) => x.occ.kind === 'problem' && x.occ.ev === f.occ.ev)?.deliveryId === undefined) {
      this.#log(`${inBurst ? '  ' : ''}${what}: held back until its problem got in (MODEL_NO_EARLY)`);
      return;
    }
    if (fate === 'lost') {
      this.#log(`${inBurst ? '  ' : ''}${what}: never reached the bridge`);
      return;
    }
    await this.#deliver(f, fate === 'ok', `${inBurst ? '  ' : ''}${what}`);
  }

  async #deliver(f: OccFacts, zabbixSeesAnswer: boolean, label: string): Promise<void> {
    const bridge = this.#alive();
    try {
      const r = await bridge.deliver(f.body as Body);
      if (f.deliveryId !== undefined && f.deliveryId !== r.deliveryId) {
        this.anomalies.push(`occurrence ${f.occ.n} (${f.occ.kind} of ev ${f.occ.ev}) got delivery id ${r.deliveryId} after ${f.deliveryId}: a redelivery was not recognised`);
      }
      f.deliveryId ??= r.deliveryId;
      if (zabbixSeesAnswer) f.answered = true;
      this.#log(`${label} → 202 id ${r.deliveryId}${r.duplicate ? ' (duplicate)' : ''}${zabbixSeesAnswer ? '' : ', answer lost: Zabbix will retry'}`);
    } catch (e) {
      const why = e instanceof Killed ? 'bridge died before answering' : (e as Error).message;
      this.#log(`${label} → failed: ${why}`);
    }
  }

  /** Deliver every webhook Zabbix still retries, until each is answered. */
  async #barrier(why: string): Promise<void> {
    for (let round = 0; ; round++) {
      const open = this.#occs.filter((f) => f.body !== undefined && !f.answered);
      if (open.length === 0) return;
      if (round === 0) this.#log(`Zabbix retries ${open.length} unanswered webhook(s) (${why})`);
      if (round > 50) throw new Error(`the bridge does not accept ${open.length} webhook(s) after 50 rounds`);
      for (const f of open) {
        const problem = this.#occs.find((x) => x.occ.kind === 'problem' && x.occ.ev === f.occ.ev);
        if (!this.spec.early && f.occ.kind === 'update' && problem?.deliveryId === undefined) continue;
        await this.#deliver(f, true, `  retry ${describeStep(this.spec, { t: 'send', occ: f.occ.n, fate: 'ok' })}`);
      }
    }
  }

  /** Wait until the bridge has decided on everything in its inbox (jobs may still run). */
  async #decided(): Promise<void> {
    const deadline = Date.now() + QUIESCE_TIMEOUT_MS;
    for (;;) {
      const bridge = this.#alive();
      try {
        if (bridge.quiet().undecided === 0) return;
      } catch (e) {
        if (!bridge.dead) throw e;
      }
      if (Date.now() > deadline) throw new Error('the bridge does not decide on its inbox');
      await sleep(3);
    }
  }

  /** Let the bridge finish: inbox decided, no job pending or running. Returns the dead letters. */
  async #quiesce(): Promise<string[]> {
    this.#log('waiting for the bridge to settle');
    const deadline = Date.now() + QUIESCE_TIMEOUT_MS;
    let stable = 0;
    let requests = -1;
    for (;;) {
      const bridge = this.#alive();
      let q;
      try {
        q = bridge.quiet();
      } catch (e) {
        if (bridge.dead) continue;
        throw e;
      }
      const idle = q.undecided === 0 && q.running === 0 && q.inflight === 0;
      if (idle && q.pending === 0) {
        // Requests a dead generation sent may still be landing: settled when GLPI saw nothing new for a few polls.
        stable = this.#fake.requests.length === requests ? stable + 1 : 0;
        requests = this.#fake.requests.length;
        if (stable >= 3) {
          const dead = bridge.deadLetters();
          this.#log(`settled: ${this.#fake.tickets.size} ticket(s), ${this.#fake.followups.length} follow-up(s), ${this.#fake.solutions.length} solution(s), ${dead.length} dead letter(s)`);
          return dead;
        }
      } else {
        stable = 0;
        if (idle) bridge.fastForward();
      }
      if (Date.now() > deadline) {
        this.anomalies.push(`the bridge did not settle within ${QUIESCE_TIMEOUT_MS / 1000} s: ${JSON.stringify(q)}; dead letters: ${bridge.deadLetters().join('; ') || 'none'}`);
        return bridge.deadLetters();
      }
      await sleep(q.pending > 0 || q.undecided > 0 || q.inflight > 0 ? 3 : 6);
    }
  }
}
