import { describe, expect, it } from '@jest/globals';
import { RemoteError } from '../../src/core/remote-error.js';
import { backoff, CircuitBreaker, decideRetry, LOGIN_PAUSE_MS, RetryAfterWindow, type BreakerChange, type Failure, type RetryContext, type RetryDecision, type RetryPolicy } from '../../src/core/retry-policy.js';

/** Jitter pinned to its middle: backoff is exactly min × 2^(attempt−1), capped. */
const mid = () => 0.5;

describe('backoff', () => {
  it.each([
    // attempt, min, cap, random → ms
    [1, 1_000, 60_000, 0.5, 1_000],
    [2, 1_000, 60_000, 0.5, 2_000],
    [3, 1_000, 60_000, 0.5, 4_000],
    [7, 1_000, 60_000, 0.5, 60_000],
    [40, 1_000, 60_000, 0.5, 60_000],
    [0, 1_000, 60_000, 0.5, 1_000],
    [1, 1_000, 60_000, 0, 800],
    [1, 1_000, 60_000, 1, 1_200],
    [7, 1_000, 60_000, 1, 72_000],
  ])('attempt %i, min %i, cap %i, random %f → %i ms', (attempt, min, cap, random, ms) => {
    expect(backoff(attempt, min, cap, () => random)).toBe(ms);
  });
});

describe('decideRetry: a failure and where its job stands → retry now, retry later (at), or dead letter', () => {
  const policy: RetryPolicy = { quickRetries: 2, quickMinDelayMs: 100, quickMaxDelayMs: 1_000, minDelayMs: 1_000, backoffCapMs: 60_000 };
  const now = 1_000_000;
  const base: RetryContext = { now, attempts: 1, glpi: true, quickRetriesLeft: 0, breakerRetryAt: 0, glpiNotBefore: 0, random: mid };
  const later = (after: number, extra: Partial<Extract<RetryDecision, { do: 'retry-later' }>> = {}): RetryDecision => ({ do: 'retry-later', at: now + after, failed: true, pauseDispatch: false, ...extra });

  const http500: Failure = { kind: 'retryable', outage: true };
  const reset: Failure = { kind: 'retryable', outage: false };
  const rateLimited = (ms: number): Failure => ({ kind: 'retryable', retryAfterMs: ms, outage: true });

  it.each<[string, Failure, Partial<RetryContext>, RetryDecision]>([
    // In this run, while tries are left
    ['retryable, tries left: again now', reset, { quickRetriesLeft: 2 }, { do: 'retry-now', waitMs: 0 }],
    ['retryable with a short Retry-After: again now, after it', rateLimited(500), { quickRetriesLeft: 1 }, { do: 'retry-now', waitMs: 500 }],
    ['Retry-After exactly the quick maximum: again now', rateLimited(1_000), { quickRetriesLeft: 1 }, { do: 'retry-now', waitMs: 1_000 }],
    ['Retry-After longer than the quick maximum: back to the queue until then', rateLimited(5_000), { quickRetriesLeft: 2 }, later(5_000)],
    ['session expired: not retried in the run', { kind: 'session' }, { quickRetriesLeft: 2 }, later(1_000)],
    ['a surprise (not a RemoteError): not retried in the run', { kind: 'unexpected' }, { quickRetriesLeft: 2 }, later(1_000)],
    // Back to the durable queue: the job's attempts set the backoff
    ['retryable, run over, first attempt', reset, {}, later(1_000)],
    ['retryable, third attempt: doubled twice', reset, { attempts: 3 }, later(4_000)],
    ['retryable, many attempts: capped', reset, { attempts: 30 }, later(60_000)],
    ['Retry-After longer than the backoff wins', { kind: 'retryable', retryAfterMs: 9_000, outage: false }, { attempts: 2 }, later(9_000)],
    // GLPI down: the breaker's probe time, not the job's attempt count
    ['GLPI down, breaker open: at its next probe', http500, { attempts: 12, breakerRetryAt: now + 300 }, later(300)],
    ['GLPI down, breaker already closed again: the quick minimum', http500, { attempts: 12 }, later(100)],
    ['GLPI down with Retry-After past the probe: Retry-After', rateLimited(5_000), { breakerRetryAt: now + 300 }, later(5_000)],
    ['Zabbix down (a write-back): its own backoff, GLPI\'s breaker does not apply', http500, { glpi: false, attempts: 3, breakerRetryAt: now + 300 }, later(4_000)],
    // Credentials refused: every job would fail alike
    ['login refused: all dispatch paused 30 s', { kind: 'login' }, {}, later(LOGIN_PAUSE_MS, { pauseDispatch: true })],
    ['login refused after many attempts: the longer backoff', { kind: 'login' }, { attempts: 30 }, later(60_000, { pauseDispatch: true })],
    // Dead letters
    ['permanent (GLPI refused the request): dead letter', { kind: 'permanent' }, { quickRetriesLeft: 2 }, { do: 'dead-letter', code: 'GLPI_PERMANENT' }],
    ['no ticket for the cycle (its create is dead): dead letter', { kind: 'ticket-missing' }, {}, { do: 'dead-letter', code: 'GLPI_TICKET_MISSING' }],
    // Held back before sending: not a failure
    ['not sent, breaker open: at its next probe, not counted', { kind: 'not-sent' }, { attempts: 5, breakerRetryAt: now + 700 }, { do: 'retry-later', at: now + 700, failed: false, pauseDispatch: false }],
    ['not sent, breaker closed meanwhile: a moment later', { kind: 'not-sent' }, {}, { do: 'retry-later', at: now + 5, failed: false, pauseDispatch: false }],
    // GLPI's Retry-After (got by this job or another) holds every GLPI job, and only GLPI jobs
    ['not sent, GLPI asked to wait past the probe: when GLPI said', { kind: 'not-sent' }, { breakerRetryAt: now + 300, glpiNotBefore: now + 2_000 }, { do: 'retry-later', at: now + 2_000, failed: false, pauseDispatch: false }],
    ['a failure while another job\'s Retry-After holds: not before it', reset, { glpiNotBefore: now + 2_000 }, later(2_000)],
    ['GLPI down while its Retry-After holds: not before it', http500, { breakerRetryAt: now + 300, glpiNotBefore: now + 2_000 }, later(2_000)],
    ['a backoff past the Retry-After: the backoff', reset, { attempts: 4, glpiNotBefore: now + 2_000 }, later(8_000)],
    ['a Retry-After already over: no effect', reset, { glpiNotBefore: now - 10 }, later(1_000)],
    ['a write-back (Zabbix) is not held by GLPI\'s Retry-After', reset, { glpi: false, glpiNotBefore: now + 2_000 }, later(1_000)],
    ['login refused while GLPI asked for longer: not before it', { kind: 'login' }, { glpiNotBefore: now + 45_000 }, later(45_000, { pauseDispatch: true })],
  ])('%s', (_name, failure, ctx, decision) => {
    expect(decideRetry(failure, { ...base, ...ctx }, policy)).toEqual(decision);
  });
});

describe('RetryAfterWindow: GLPI said "not before"', () => {
  it.each<[string, [number, number][], number, boolean]>([
    // Retry-After answers as [at, ms] → until, and whether GLPI may be asked at t = 1 500
    ['none', [], 0, true],
    ['one: 2 s', [[1_000, 2_000]], 3_000, false],
    ['Retry-After: 0', [[1_000, 0]], 1_000, true],
    ['a shorter one later does not shorten it', [[1_000, 5_000], [1_200, 100]], 6_000, false],
    ['a longer one later extends it', [[1_000, 2_000], [1_200, 5_000]], 6_200, false],
    ['a negative wait counts as none', [[1_000, -500]], 1_000, true],
  ])('%s', (_name, answers, until, openAt1500) => {
    const w = new RetryAfterWindow();
    for (const [t, ms] of answers) w.note(t, ms);
    expect(w.until).toBe(until);
    expect(w.open(1_500)).toBe(openAt1500);
    expect(w.open(until)).toBe(true);
  });
});

describe('CircuitBreaker', () => {
  const cause = (retryAfterMs?: number) => new RemoteError('retryable', 'HTTP_503', '503', 503, retryAfterMs, { outage: true, mayHaveLanded: false });

  it('opens on a failure that says GLPI is down, lets exactly one probe go after the backoff, doubles it when the probe fails, closes on an answer', () => {
    const changes: BreakerChange[] = [];
    const b = new CircuitBreaker({ minDelayMs: 100, maxDelayMs: 1_000, random: mid }, (c) => changes.push(c));
    expect(b.gate(0)).toEqual({ run: 'all' });
    b.down(1, 0, cause());
    expect(b.state).toBe('open');
    expect(b.gate(50)).toEqual({ run: 'none', until: 100 });
    expect(b.admit(2, 99)).toBe(false);
    expect(b.gate(100)).toEqual({ run: 'one' });
    expect(b.admit(2, 100)).toBe(true);
    expect(b.state).toBe('half_open');
    expect(b.admit(3, 100)).toBe(false);
    // A job that was in flight failing too changes nothing.
    b.down(1, 110, cause());
    expect(b.state).toBe('half_open');
    b.down(2, 120, cause());
    expect([b.state, b.retryAt]).toEqual(['open', 320]);
    expect(b.admit(3, 320)).toBe(true);
    b.answered(330);
    expect(b.state).toBe('closed');
    expect(changes.map((c) => c.state)).toEqual(['open', 'half_open', 'open', 'half_open', 'closed']);
    expect(changes.at(-1)).toMatchObject({ downForMs: 330, probes: 2 });
  });

  it('honours Retry-After, caps the backoff, and frees the probe slot when the probe sent nothing', () => {
    const b = new CircuitBreaker({ minDelayMs: 100, maxDelayMs: 300, random: mid });
    b.down(1, 0, cause(5_000));
    expect(b.retryAt).toBe(5_000);
    for (let t = 5_000, i = 0; i < 5; i++) {
      expect(b.admit(9, t)).toBe(true);
      b.down(9, t, cause());
      expect(b.retryAt - t).toBeLessThanOrEqual(300);
      t = b.retryAt;
    }
    const at = b.retryAt;
    expect(b.admit(4, at)).toBe(true);
    b.release(4, at);
    expect(b.admit(5, at)).toBe(true);
  });

  type Step = 'down' | 'probe' | 'probe-down' | 'answered' | 'release';
  it.each<[string, Step[], string, number]>([
    // steps (at t = 0, 1000, 2000, … ; min 100, max 1000) → state, retryAt
    ['nothing happened', [], 'closed', 0],
    ['GLPI down', ['down'], 'open', 100],
    ['down, then an in-flight job answers: closed', ['down', 'answered'], 'closed', 0],
    ['down, probe', ['down', 'probe'], 'half_open', 100],
    ['down, failed probe: twice the wait', ['down', 'probe', 'probe-down'], 'open', 2_200],
    ['down, two failed probes: four times', ['down', 'probe', 'probe-down', 'probe', 'probe-down'], 'open', 4_400],
    ['down, probe answered: closed', ['down', 'probe', 'answered'], 'closed', 0],
    ['down, probe sent nothing: open, next probe at once', ['down', 'probe', 'release'], 'open', 2_000],
  ])('%s', (_name, steps, state, retryAt) => {
    const b = new CircuitBreaker({ minDelayMs: 100, maxDelayMs: 1_000, random: mid });
    steps.forEach((step, i) => {
      const t = i * 1_000;
      if (step === 'down') b.down(1, t, cause());
      else if (step === 'probe') expect(b.admit(2, t)).toBe(true);
      else if (step === 'probe-down') b.down(2, t, cause());
      else if (step === 'answered') b.answered(t);
      else b.release(2, t);
    });
    expect([b.state, b.retryAt]).toEqual([state, retryAt]);
  });
});
