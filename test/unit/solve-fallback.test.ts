import { describe, expect, it } from '@jest/globals';
import type { JobSpec } from '../../src/core/decide.js';
import type { Job, TicketDesk } from '../../src/core/ports.js';
import { RemoteError } from '../../src/core/remote-error.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { JobRunner } from '../../src/services/job-runner.js';

/** A ticket desk whose solution and status updates answer as a given GLPI workflow does. */
function desk(o: { solution: 'refused' | 'stored_unsolved' | 'ok'; statusUpdate: 'ok' | 'dropped' | 'refused' }) {
  let status = 2;
  const followups: string[] = [];
  const calls: string[] = [];
  const refusal = (what: string) => new RemoteError('permanent', what, `GLPI answered 400 ${what}: Mandatory fields are not filled. Please correct: Location`, 400, undefined, { mayHaveLanded: false });
  const d: TicketDesk = {
    findTicketByMarker: async () => undefined,
    createTicket: async () => 1,
    addFollowup: async (_id, content) => {
      calls.push('followup');
      followups.push(content);
      return followups.length;
    },
    followupContents: async () => [...followups],
    addSolution: async () => {
      calls.push('solution');
      if (o.solution === 'refused') throw refusal('ERROR_GLPI_ADD');
      if (o.solution === 'ok') status = 5;
      return 'added';
    },
    updateTicket: async (_id, fields) => {
      calls.push(`status ${String(fields.status)}`);
      if (o.statusUpdate === 'refused') throw refusal('ERROR_GLPI_UPDATE');
      if (o.statusUpdate === 'ok') status = Number(fields.status);
    },
    ticketStatus: async () => status,
    ticketUrl: (id) => `#${id}`,
  };
  return { d, followups, calls, status: () => status };
}

const spec: JobSpec = { type: 'solve', mode: 'solve', lines: ['Zabbix: the problem recovered.'] };
const job: Job = { id: 9, fingerprint: 'fp', key: 'k', lane: 'glpi:k', cycle: 1, type: 'solve', spec, status: 'running', attempts: 1, nextAttemptAt: 0, createdAt: 0 };

async function run(o: Parameters<typeof desk>[0], fallback: readonly ('status' | 'followup')[] = ['status', 'followup']) {
  const g = desk(o);
  const metrics = createMetrics({ processMetrics: false });
  const runner = new JobRunner(g.d, { ticketId: () => 1 }, { solutionTypeId: 0, recoveryFallback: fallback, metrics });
  const outcome = await runner.run(job, { uncertain: false }).catch((e: unknown) => e);
  const counted = (await metrics.registry.getSingleMetric('zgb_glpi_solution_refused_total')!.get()).values.map((v) => `${v.labels.reason}/${v.labels.fallback}`);
  return { ...g, outcome, counted };
}

describe('a recovery GLPI\'s workflow refuses (glpi.recovery_fallback)', () => {
  it('a solution GLPI takes: solved, nothing else sent', async () => {
    const r = await run({ solution: 'ok', statusUpdate: 'ok' });
    expect(r.outcome).toEqual({ operation: 'solved', ticketId: 1 });
    expect(r.calls).toEqual(['solution']);
    expect(r.counted).toEqual([]);
  });

  it('a refused solution, a status change GLPI allows: the recovery said in a follow-up, then Solved', async () => {
    const r = await run({ solution: 'refused', statusUpdate: 'ok' });
    expect(r.outcome).toEqual({ operation: 'solved', ticketId: 1 });
    expect(r.calls).toEqual(['solution', 'followup', 'status 5']);
    expect(r.followups[0]).toContain('Zabbix: the problem recovered.');
    expect(r.counted).toEqual(['refused/status']);
  });

  it('a solution stored but the ticket not solved, the status refused too: one follow-up, no dead letter', async () => {
    const r = await run({ solution: 'stored_unsolved', statusUpdate: 'refused' });
    expect(r.outcome).toEqual({ operation: 'followed_up', ticketId: 1 });
    expect(r.calls).toEqual(['solution', 'status 5', 'followup']);
    expect(r.followups).toHaveLength(1);
    expect(r.followups[0]).toContain('Mandatory fields are not filled. Please correct: Location');
    expect(r.counted).toEqual(['status_unchanged/followup']);
  });

  it('a refused solution, the status silently dropped: a single follow-up says it', async () => {
    const r = await run({ solution: 'refused', statusUpdate: 'dropped' });
    expect(r.outcome).toEqual({ operation: 'followed_up', ticketId: 1 });
    expect(r.followups).toHaveLength(1);
    expect(r.counted).toEqual(['refused/followup']);
  });

  it('only [status], and GLPI refuses that too: the job fails with GLPI_SOLUTION_REFUSED and GLPI\'s reason', async () => {
    const r = await run({ solution: 'stored_unsolved', statusUpdate: 'refused' }, ['status']);
    expect(r.outcome).toMatchObject({ code: 'GLPI_SOLUTION_REFUSED', kind: 'permanent' });
    expect((r.outcome as Error).message).toContain('Mandatory fields are not filled');
    expect(r.counted).toEqual(['status_unchanged/none']);
  });
});
