import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import type { JobSpec } from '../../src/core/decide.js';
import type { Job, TicketDesk } from '../../src/core/ports.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { JobRunner } from '../../src/services/job-runner.js';

/**
 * A problem job on a GLPI API without Problem routes (the v2 adapter, glpi.api: v2: docs/glpi-api-v2.md
 * lists none): skipped, never a dead letter, logged once per process and counted every time.
 */
const desk: TicketDesk = {
  findTicketByMarker: async () => undefined,
  createTicket: async () => 1,
  addFollowup: async () => 1,
  followupContents: async () => [],
  addSolution: async () => 'added',
  updateTicket: async () => undefined,
  ticketStatus: async () => 1,
  ticketUrl: (id) => `#${id}`,
};

const spec: JobSpec = {
  type: 'problem',
  marker: '[zbx:p0123]',
  problem: { name: '[zbx:p0123] Recurring: cpu', content: 'x', urgency: 3, impact: 3, entities_id: 0, itilcategories_id: 0 },
  cycles: [1, 2, 3],
  lines: ['again'],
};
const job = (id: number): Job => ({ id, fingerprint: 'fp', key: 'k', lane: 'glpi:k', cycle: 3, type: 'problem', spec, status: 'running', attempts: 1, nextAttemptAt: 0, createdAt: 0 });

describe('problem jobs without Problem routes', () => {
  it('complete as skipped, logged once, counted each time', async () => {
    const lines: { code?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { code?: string }) });
    const metrics = createMetrics({ processMetrics: false });
    const runner = new JobRunner(desk, { ticketId: (_j, c) => c * 10 }, { solutionTypeId: 0, logger, metrics });
    expect(await runner.run(job(1), { uncertain: false })).toEqual({ operation: 'problem_unsupported', ticketId: 30 });
    expect(await runner.run(job(2), { uncertain: false })).toEqual({ operation: 'problem_unsupported', ticketId: 30 });
    expect(lines.filter((l) => l.code === 'GLPI_PROBLEMS_UNSUPPORTED')).toHaveLength(1);
    const counted = (await metrics.registry.getSingleMetric('zgb_glpi_problems_total')!.get()).values;
    expect(counted).toEqual([{ labels: { operation: 'unsupported' }, value: 2 }]);
  });
});
