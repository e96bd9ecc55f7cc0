import type { TicketDraft } from '../core/decide.js';
import { withValueHistory } from '../core/render.js';
import type { TicketDesk, ValueHistoryReader } from '../core/ports.js';
import { withDraftStep } from './draft-step.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/*
 * The item's last values in a new ticket's body (issue 14 item 7; zabbix.value_history). The core cannot fetch
 * them when it decides (it is pure and synchronous), so they are fetched when the create runs: the desk the
 * dispatcher creates tickets through is wrapped (composition/processing.ts), like the names and the asset
 * (services/glpi-names.ts). Only the body changes; the marker, and so the create's idempotence, do not.
 *
 * History is a nicety: a slow or failing Zabbix must never hold a ticket back more than `timeoutMs`, nor fail it.
 * The ticket then goes without it; the failure is counted, and logged once per distinct error.
 */

export interface ValueHistorySettings {
  /** Off: creates go through untouched (read at each create: a reload turns it on or off). */
  readonly enabled: boolean;
  /** How many of the item's last values (1 to render.ts's VALUE_HISTORY_MAX). */
  readonly count: number;
  /** The longest a create waits for them. */
  readonly timeoutMs: number;
}

/** Appends the item's last values to the bodies of new tickets; every other call passes through. */
export class ValueHistory {
  #lastError: string | undefined;

  constructor(
    private readonly reader: ValueHistoryReader,
    private readonly settings: () => ValueHistorySettings,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  /** The draft with the item's last values appended to its content (the draft unchanged without an item, values, or in time). */
  async withHistory(t: TicketDraft): Promise<TicketDraft> {
    const { enabled, count, timeoutMs } = this.settings();
    if (!enabled || !t.item) return t;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
    try {
      const h = await Promise.race([this.reader.itemHistory(t.item.id, count), late]);
      if (h === 'late') throw new Error(`no answer within ${timeoutMs} ms`);
      if (this.#lastError !== undefined) this.logger.info({ item_id: t.item.id }, 'Zabbix value history answering again');
      this.#lastError = undefined;
      if (h.points.length === 0) {
        this.metrics.valueHistory.inc({ result: 'empty' });
        return t;
      }
      this.metrics.valueHistory.inc({ result: 'added' });
      return { ...t, content: withValueHistory(t.content, h.points, h.units) };
    } catch (e) {
      this.metrics.valueHistory.inc({ result: 'failed' });
      const message = (e as Error).message;
      if (this.#lastError !== message) {
        this.logger.warn({ item_id: t.item.id, err: message }, 'Zabbix value history not fetched: the ticket is created without it (zabbix.value_history)');
      }
      this.#lastError = message;
      return t;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The desk with value history added to every create. */
  desk(desk: TicketDesk): TicketDesk {
    return withDraftStep(desk, (t) => this.withHistory(t));
  }
}
