import { describe, expect, it } from '@jest/globals';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Counter, Registry } from 'prom-client';
import { loadConfig } from '../../src/config/load.js';
import { Secret } from '../../src/config/secret.js';
import { fromTransferable, toTransferable } from '../../src/config/thread-transfer.js';
import { BatchedLines, createLogger } from '../../src/observability/logger.js';
import { createMetrics, mergedExposition } from '../../src/observability/metrics.js';
import { INTAKE_BUSY_COMMIT, WakeSignal } from '../../src/threads/messages.js';
import { ProcessingThread } from '../../src/threads/processing-thread.js';
import { ROOT } from '../helpers/fixtures.js';

function config() {
  const dir = mkdtempSync(join(tmpdir(), 'zgb-threads-'));
  const file = join(dir, 'bridge.yaml');
  writeFileSync(file, `data_dir: ${dir}\nglpi:\n  url: http://glpi.local/apirest.php\n  user_token: \${GLPI_USER_TOKEN}\nrules_file: ${join(ROOT, 'config', 'rules.example.yaml')}\n`);
  return loadConfig(file, { GLPI_USER_TOKEN: 'u-secret' });
}

describe('configuration sent to the processing thread', () => {
  it('arrives whole: secrets still Secrets, rule patterns still patterns that match', () => {
    const c = config();
    const back = fromTransferable(structuredClone(toTransferable(c)));
    expect(back.glpi.user_token).toBeInstanceOf(Secret);
    expect(back.glpi.user_token.reveal()).toBe('u-secret');
    expect(String(back.glpi.user_token)).toBe('<secret>');
    expect(back.rules.categories.map((r) => r.name)).toEqual(c.rules.categories.map((r) => r.name));
    expect(JSON.stringify(back.rules)).toBe(JSON.stringify(c.rules));
    expect(back.correlation).toEqual(c.correlation);
    // Compiled patterns still match on the other side (they are classes: structured clone would drop their methods).
    const cpu = back.rules.categories.find((r) => r.name === 'cpu');
    const original = c.rules.categories.find((r) => r.name === 'cpu');
    expect(cpu?.itemKeys.map((m) => [m.pattern, m.test('system.cpu.util')])).toEqual(original?.itemKeys.map((m) => [m.pattern, m.test('system.cpu.util')]));
    expect(cpu?.itemKeys.some((m) => m.test('system.cpu.util'))).toBe(true);
  });
});

describe('metrics of both threads', () => {
  it('are one exposition: counters summed, each metric declared once, process metrics kept', async () => {
    const main = createMetrics();
    const worker = createMetrics({ processMetrics: false });
    main.tickets.inc({ operation: 'opened' }, 2);
    worker.tickets.inc({ operation: 'opened' }, 3);
    worker.decisions.inc({ action: 'open' });
    main.alertsReceived.inc({ source: 'webhook', kind: 'problem', outcome: 'accepted' });
    const text = await mergedExposition(main.registry, [await worker.registry.getMetricsAsJSON()]);
    expect(text).toContain('zgb_tickets_total{operation="opened"} 5');
    expect(text).toContain('zgb_decisions_total{action="open"} 1');
    expect(text).toContain('zgb_alerts_received_total{source="webhook",kind="problem",outcome="accepted"} 1');
    expect(text).toMatch(/^zgb_process_process_start_time_seconds \d+/m);
    const helps = [...text.matchAll(/^# HELP (\S+)/gm)].map((m) => m[1]);
    expect(helps.length).toBe(new Set(helps).size);
  });

  it('a registry with no counterpart passes through unchanged', async () => {
    const r = new Registry();
    new Counter({ name: 'only_here_total', help: 'x', registers: [r] }).inc(7);
    expect(await mergedExposition(r, [])).toContain('only_here_total 7');
  });
});

describe('ProcessingThread', () => {
  it('relays the thread’s log lines and answers; when the thread fails, says why once and refuses further work', async () => {
    const lines: string[] = [];
    const deaths: string[] = [];
    const logger = createLogger('fatal', { write: () => undefined });
    const script = pathToFileURL(join(ROOT, 'test', 'fixtures', 'threads', 'faulty-worker.mjs'));
    const t = new ProcessingThread(config(), 0, { write: (s: string) => lines.push(s) }, logger, (reason) => deaths.push(reason), script);
    await t.ready();
    expect(lines.join('')).toContain('hello from the processing thread');
    await expect(t.status()).resolves.toEqual({ session: 'open' });
    await expect(t.metrics()).resolves.toEqual([]);
    t.wake(42);
    for (let i = 0; i < 200 && deaths.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(deaths).toEqual(['boom after delivery 42']);
    expect(t.exitReason).toBe('boom after delivery 42');
    await expect(t.status()).resolves.toBeUndefined();
    await expect(t.stop(1000)).rejects.toThrow(/boom after delivery 42/);
  });
});

describe('waking the processing thread (no message per commit)', () => {
  it('a commit while the thread reads on needs no message; the thread sees its position', () => {
    const main = new WakeSignal();
    const thread = new WakeSignal(main.buffer);
    expect(main.advance(10)).toBe(false);
    expect(main.advance(12)).toBe(false);
    expect(thread.through()).toBe(12);
  });

  it('once the thread sleeps, the next commit sends one message, and the ones after it none', () => {
    const main = new WakeSignal();
    const thread = new WakeSignal(main.buffer);
    main.advance(5);
    expect(thread.sleep(5)).toBe(true);
    expect(main.advance(6)).toBe(true);
    expect(main.advance(7)).toBe(false);
    expect(thread.through()).toBe(7);
  });

  it('a commit between the thread’s last read and its sleep is never lost: the thread reads on instead', () => {
    const main = new WakeSignal();
    const thread = new WakeSignal(main.buffer);
    main.advance(5);
    const seen = thread.through();
    main.advance(6); // after the read, before sleep(): the thread is not asleep yet, so no message
    expect(thread.sleep(seen)).toBe(false);
    expect(thread.through()).toBe(6);
    // It did not stay asleep: the next commit needs no message either.
    expect(main.advance(7)).toBe(false);
  });
});

describe('the intake’s pressure, as the processing thread sees it', () => {
  /** The main thread's signal and the processing thread's view of the same memory. */
  const sides = () => {
    const main = new WakeSignal();
    return { main, thread: new WakeSignal(main.buffer) };
  };

  it('is busy while group commits answer INTAKE_BUSY_COMMIT webhooks or more and the inbox moves', () => {
    const { main, thread } = sides();
    main.advance(100, INTAKE_BUSY_COMMIT);
    expect(thread.intakeBusy(0)).toBe(true);
    main.advance(140, 40);
    expect(thread.intakeBusy(100)).toBe(true);
  });

  it('is not busy when commits answer fewer (alerts arrive slower than an fsync takes)', () => {
    const { main, thread } = sides();
    main.advance(3, INTAKE_BUSY_COMMIT - 1);
    expect(thread.intakeBusy(0)).toBe(false);
    main.advance(4, 1);
    expect(thread.intakeBusy(100)).toBe(false);
  });

  it('is not busy once the inbox stopped moving, however big the last commit was', () => {
    const { main, thread } = sides();
    main.advance(64, 64);
    expect(thread.intakeBusy(0)).toBe(true);
    expect(thread.intakeBusy(100)).toBe(false);
  });

  it('is looked at once per few milliseconds, whoever asks: a second asker in the same moment gets the same answer', () => {
    const { main, thread } = sides();
    main.advance(64, 64);
    expect(thread.intakeBusy(0)).toBe(true);
    expect(thread.intakeBusy(1)).toBe(true);
  });

  it('is busy when any commit since the last look was big, though the last one was small (a saturating closed loop alternates them)', () => {
    const { main, thread } = sides();
    main.advance(40, 40);
    main.advance(42, 2);
    expect(thread.intakeBusy(0)).toBe(true);
    main.advance(44, 2);
    main.advance(80, 36);
    main.advance(81, 1);
    expect(thread.intakeBusy(100)).toBe(true);
  });

  it('forgets a big commit once looked at: the next look goes by the commits after it', () => {
    const { main, thread } = sides();
    main.advance(40, 40);
    expect(thread.intakeBusy(0)).toBe(true);
    main.advance(41, 1);
    main.advance(43, 2);
    expect(thread.intakeBusy(100)).toBe(false);
    // The next look finds the inbox where it was: not busy, and the big commit it took says nothing about later moves.
    main.advance(83, 40);
    expect(thread.intakeBusy(200)).toBe(true);
    expect(thread.intakeBusy(300)).toBe(false);
    main.advance(84, 1);
    expect(thread.intakeBusy(400)).toBe(false);
  });
});

describe('log lines', () => {
  it('are written whole and in order, once per turn or on flush, however many and however long', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'zgb-log-')), 'out.log');
    const fd = openSync(file, 'w');
    try {
      const out = new BatchedLines(fd);
      const lines = Array.from({ length: 300 }, (_, i) => `${JSON.stringify({ n: i, text: 'x'.repeat(i % 7 === 0 ? 5000 : 40), é: 'ü' })}\n`);
      for (const l of lines) out.write(l);
      out.flush();
      expect(readFileSync(file, 'utf8')).toBe(lines.join(''));
      out.flush(); // nothing pending: nothing written twice
      expect(readFileSync(file, 'utf8')).toBe(lines.join(''));
    } finally {
      closeSync(fd);
    }
  });

  it('a logger writes through them: the line is there after the turn', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'zgb-log-')), 'out.log');
    const fd = openSync(file, 'w');
    try {
      const logger = createLogger('info', new BatchedLines(fd));
      logger.info({ delivery_id: 1 }, 'decision');
      await new Promise((r) => setImmediate(r));
      const line = JSON.parse(readFileSync(file, 'utf8')) as { msg: string; delivery_id: number };
      expect(line).toMatchObject({ msg: 'decision', delivery_id: 1 });
    } finally {
      closeSync(fd);
    }
  });
});
