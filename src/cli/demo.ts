import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { isMap, isSeq, parseDocument } from 'yaml';
import { buildApp } from '../app.js';
import { packageFile } from '../adapters/package-files.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../observability/logger.js';
import { FakeGlpi } from '../glpi-fake/server.js';

/**
 * `demo`: the whole flow on a laptop, nothing else installed. The daemon runs
 * on a temporary embedded store against the built-in GLPI fake; a realistic
 * sequence of Zabbix webhooks is replayed and what each alert became is
 * printed as it happens.
 */

const TOKEN = 'demo-webhook-token';

interface Style {
  readonly bold: (s: string) => string;
  readonly dim: (s: string) => string;
  readonly color: (name: 'green' | 'yellow' | 'red' | 'cyan' | 'magenta' | 'blue', s: string) => string;
}

function style(tty: boolean): Style {
  const wrap = (code: number, s: string) => (tty ? `\u001b[${code}m${s}\u001b[0m` : s);
  const codes = { green: 32, yellow: 33, red: 31, cyan: 36, magenta: 35, blue: 34 } as const;
  return { bold: (s) => wrap(1, s), dim: (s) => wrap(2, s), color: (n, s) => wrap(codes[n], s) };
}

/**
 * The example rules, with a Problem rule on the cpu category (commented out in the example): a CPU incident
 * that comes back three times within the hour becomes a GLPI Problem linking its tickets (issue 14 item 1).
 */
function demoRules(): string {
  const rules = packageFile('config/rules.example.yaml');
  const doc = parseDocument(readFileSync(rules, 'utf8'));
  const categories = doc.get('categories');
  const cpu = isSeq(categories) ? categories.items.find((c) => isMap(c) && c.get('name') === 'cpu') : undefined;
  if (!isMap(cpu)) throw new Error(`${rules} has no cpu category: the demo's recurring incident needs one`);
  cpu.set('problems', doc.createNode({ after_cycles: 3, within: '1h' }, { flow: true }));
  return String(doc);
}

/** What a GLPI job did, in the demo's words. */
const OPERATION_WORDS: Readonly<Record<string, string>> = {
  problem_opened: 'opened a GLPI Problem for the recurring incident and linked its tickets, up to',
  problem_linked: 'linked to the GLPI Problem of the recurring incident:',
};

const ACTION_COLOR = { open: 'green', follow_up: 'cyan', update_severity: 'magenta', reopen: 'yellow', solve: 'blue', suppress: 'yellow', ignore: 'yellow' } as const;

/** Renders the daemon's JSON log lines as readable demo output. */
function narrator(out: NodeJS.WritableStream, st: Style, narrated: Set<string>): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        let l: Record<string, unknown>;
        try {
          l = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        const fp = String(l.fingerprint ?? '').replace(/\|/g, ' ');
        if (l.msg === 'decision') {
          const action = String(l.action) as keyof typeof ACTION_COLOR;
          out.write(`   ${st.dim('bridge')}  ${st.color(ACTION_COLOR[action] ?? 'cyan', action.padEnd(15))} ${String(l.kind).padEnd(8)} ${st.bold(String(l.category))}/${l.severity}  ${st.dim(`${fp} — ${String(l.reason)}`)}\n`);
        } else if (l.msg === 'GLPI job done') {
          narrated.add(String(l.operation));
          const what = OPERATION_WORDS[String(l.operation)] ?? String(l.operation);
          const ticket = Number(l.ticket_id) > 0 ? ` ticket #${String(l.ticket_id)}` : '';
          out.write(`   ${st.dim('GLPI  ')}  ${st.color('green', `✔ ${what}`)}${ticket}${l.ticket_url ? st.dim(`  ${String(l.ticket_url)}`) : ''}\n`);
        } else if (l.msg === 'job moved to dead letters' || l.level === 'error') {
          out.write(`   ${st.color('red', `✖ ${String(l.msg)}: ${String(l.reason ?? l.err ?? '')}`)}\n`);
        }
      }
      done();
    },
  });
}

function now(offsetSeconds = 0): { date: string; time: string } {
  const d = new Date(Date.now() + offsetSeconds * 1000);
  const iso = d.toISOString();
  return { date: iso.slice(0, 10).replace(/-/g, '.'), time: iso.slice(11, 19) };
}

let nextEvent = 5000;

interface Problem {
  readonly host: string;
  readonly trigger: string;
  readonly triggerId: string;
  readonly itemKey: string;
  readonly value: string;
  readonly severity: number;
  readonly tags: Record<string, string>;
  readonly ip?: string;
}

const SEVERITY_NAMES = ['Not classified', 'Information', 'Warning', 'Average', 'High', 'Disaster'];

function body(p: Problem, eventId: string, kind: 'problem' | 'recovery' | 'update', extra: Record<string, string> = {}): Record<string, string> {
  const t = now();
  return {
    event_id: eventId,
    event_value: kind === 'recovery' ? '0' : '1',
    event_source: '0',
    event_name: p.trigger,
    event_update_status: kind === 'update' ? '1' : '0',
    event_update_action: '{EVENT.UPDATE.ACTION}',
    event_update_message: '{EVENT.UPDATE.MESSAGE}',
    event_update_date: kind === 'update' ? t.date : '{EVENT.UPDATE.DATE}',
    event_update_time: kind === 'update' ? t.time : '{EVENT.UPDATE.TIME}',
    event_recovery_id: kind === 'recovery' ? String(Number(eventId) + 1) : '{EVENT.RECOVERY.ID}',
    event_nseverity: String(p.severity),
    event_severity: SEVERITY_NAMES[p.severity] ?? 'High',
    event_tags: JSON.stringify(Object.entries(p.tags).map(([tag, value]) => ({ tag, value }))),
    event_date: t.date,
    event_time: t.time,
    event_opdata: `Current: ${p.value}`,
    trigger_id: p.triggerId,
    trigger_name: p.trigger,
    host_host: p.host,
    host_name: p.host,
    host_ip: p.ip ?? '10.0.0.10',
    item_key: p.itemKey,
    item_value: p.value,
    item_id: '1',
    user_fullname: '{USER.FULLNAME}',
    ...extra,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Until `check` holds, or `maxMs` passed. */
async function until(check: () => boolean, maxMs: number): Promise<void> {
  for (let waited = 0; waited < maxMs && !check(); waited += 50) await sleep(50);
}

export async function demoCommand(out: NodeJS.WritableStream = process.stdout, pace = 1): Promise<number> {
  const st = style(Boolean((out as NodeJS.WriteStream).isTTY) && !process.env.NO_COLOR);
  const dir = mkdtempSync(join(tmpdir(), 'zabbix-glpi-bridge-demo-'));
  // GLPI's inventory: web-01 and db-01 by name; the switch known to GLPI under another name, found by its IP.
  const glpi = new FakeGlpi({
    userTokens: ['demo-user-token'],
    directory: {
      assets: [
        { itemtype: 'Computer', id: 1, name: 'web-01', ips: ['10.0.1.11'] },
        { itemtype: 'Computer', id: 2, name: 'db-01', ips: ['10.0.1.21'] },
        { itemtype: 'NetworkEquipment', id: 1, name: 'core-switch-2', ips: ['10.0.2.2'] },
      ],
    },
  });
  const glpiUrl = await glpi.listen();
  const configFile = join(dir, 'bridge.yaml');
  const rulesFile = join(dir, 'rules.yaml');
  writeFileSync(rulesFile, demoRules());
  writeFileSync(
    configFile,
    [
      'listen: 127.0.0.1:0',
      `data_dir: ${dir}`,
      'webhook:',
      `  token: ${TOKEN}`,
      'glpi:',
      `  url: ${glpiUrl}`,
      '  user_token: demo-user-token',
      'correlation:',
      `  hold_down: ${Math.round(3000 * pace)}ms`,
      `  coalesce_window: ${Math.round(500 * pace)}ms`,
      // Short, so that each CPU spike after a solved one is a new ticket cycle (a recurrence), not a reopening.
      `  reopen_window: ${Math.round(1000 * pace)}ms`,
      `rules_file: ${rulesFile}`,
    ].join('\n'),
  );
  const config = loadConfig(configFile, {});
  /** The GLPI operations narrated so far. */
  const narrated = new Set<string>();
  const destination = narrator(out, st, narrated);
  const app = buildApp(config, { logger: createLogger('info', destination), logDestination: destination });
  const address = await app.start();
  const post = async (b: Record<string, string>) => {
    const res = await fetch(`${address}/zabbix/webhook`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(b) });
    if (res.status !== 202) throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
  };
  const wait = (ms: number) => sleep(ms * pace);
  const say = (title: string) => out.write(`\n${st.bold(`▶ ${title}`)}\n`);
  const zabbix = (text: string) => out.write(`   ${st.dim('zabbix')}  ${text}\n`);
  /** What Zabbix sends, as the narration says it; then a pause (scaled by --pace). */
  const send = async (text: string, b: Record<string, string>, pauseMs = 0) => {
    zabbix(text);
    await post(b);
    if (pauseMs > 0) await wait(pauseMs);
  };

  out.write(`${st.bold('zabbix-glpi-bridge demo')} — bridge on ${address}, GLPI fake on ${glpiUrl}, store in ${dir}\n`);
  out.write(st.dim('Hold-down 3 s (flaps never become tickets); follow-ups and solutions wait 0.5 s to merge; reopen window 1 s, and a\n'));
  out.write(st.dim('cpu incident back for a third ticket within the hour becomes a GLPI Problem (problems: { after_cycles: 3, within: 1h }).\n'));

  try {
    const cpu: Problem = { host: 'web-01', trigger: 'High CPU utilization on web-01', triggerId: '101', itemKey: 'system.cpu.util', value: '97 %', severity: 4, tags: { component: 'cpu' } };
    say('CPU spikes on web-01 that recover, and come back: a recurring incident becomes a GLPI Problem');
    for (let i = 1; i <= 3; i++) {
      const cpuEvent = String(nextEvent++);
      await send(`problem  High CPU utilization on web-01, 97 % (Zabbix: High)${i > 1 ? ` — again (${i})` : ''}`, body(cpu, cpuEvent, 'problem'), 3500);
      // The recovery once GLPI has the ticket (and, the third time, the Problem), so that the story reads in order.
      await until(() => glpi.tickets.size >= i && (i < 3 || narrated.has('problem_opened')), 10_000);
      await send('recovery CPU back to 12 %', body({ ...cpu, value: '12 %' }, cpuEvent, 'recovery'), 1500);
    }

    const disk: Problem = { host: 'db-01', trigger: 'Free disk space is low on db-01:/var', triggerId: '202', itemKey: 'vfs.fs.size[/var,pused]', value: '91 %', severity: 2, tags: { component: 'storage' } };
    say('A disk filling up on db-01');
    const diskEvent = String(nextEvent++);
    await send('problem  /var 91 % used (Zabbix: Warning)', body(disk, diskEvent, 'problem'), 4000);
    await send('update   an admin raises the severity to Disaster: /var at 99 %', body({ ...disk, value: '99 %', severity: 5 }, diskEvent, 'update', { event_update_action: 'changed severity from Warning to Disaster', user_fullname: 'Sam Admin (sam)' }), 1500);

    const link: Problem = { host: 'sw-02', trigger: 'Interface Gi0/12: Link down', triggerId: '303', itemKey: 'net.if.status[Gi0/12]', value: 'down', severity: 3, tags: { component: 'network' }, ip: '10.0.2.2' };
    say('A flapping network link on sw-02');
    for (let i = 0; i < 4; i++) {
      const e = String(nextEvent++);
      await send(`problem  Link down (flap ${i + 1})`, body(link, e, 'problem'), 600);
      await send('recovery Link up', body({ ...link, value: 'up' }, e, 'recovery'), 300);
    }
    const stays = String(nextEvent++);
    await send('problem  Link down — and it stays down', body(link, stays, 'problem'), 4000);

    const temp: Problem = { host: 'rack-04-pdu', trigger: 'Inlet temperature too high in rack 4', triggerId: '404', itemKey: 'sensor.temp[inlet]', value: '88 °C', severity: 3, tags: { component: 'temperature' } };
    say('A temperature alarm in rack 4, acknowledged by an operator');
    const tempEvent = String(nextEvent++);
    await send('problem  inlet 88 °C (Zabbix: Average)', body(temp, tempEvent, 'problem'), 4000);
    await send('update   Jane Operator acknowledges: "Facilities notified, rack door was open"', body(temp, tempEvent, 'update', { event_update_action: 'acknowledged and commented', event_update_message: 'Facilities notified, rack door was open', user_fullname: 'Jane Operator (jane)' }), 1500);
    await send('recovery inlet back to 24 °C', body({ ...temp, value: '24 °C' }, tempEvent, 'recovery'));
    const busy = () => {
      const q = app.store.stats();
      return q.unprocessed + q.pending + q.running > 0;
    };
    await sleep(100);
    for (let i = 0; i < 100 && busy(); i++) await sleep(100);

    const status = ['', 'new', 'assigned', 'planned', 'pending', 'solved', 'closed'];
    const assetOf = (i: { itemtype: string; items_id: number } | undefined) => {
      const a = i ? glpi.directory.asset(i.itemtype, i.items_id) : undefined;
      return a ? `${a.itemtype} "${a.name}" (found by ${a.name === 'core-switch-2' ? 'IP' : 'name'})` : 'none in GLPI (counted in zgb_glpi_assets_total{result="none"})';
    };
    out.write(`\n${st.bold('GLPI now holds')}\n`);
    for (const p of glpi.itil.problems.values()) {
      const linked = glpi.itil.ticketsOfProblem(p.id).sort((a, b) => a - b).map((id) => `#${id}`);
      out.write(
        `   Problem #${p.id}  ${st.bold((status[p.status] ?? String(p.status)).padEnd(8))} ${p.name}\n` +
          st.dim(`        links tickets ${linked.join(', ')}; opened by the bridge, never solved or closed by it (root cause is for humans)\n`),
      );
    }
    for (const t of glpi.tickets.values()) {
      out.write(
        `   #${t.id}  ${st.bold((status[t.status] ?? String(t.status)).padEnd(8))} urgency ${t.urgency}  category ${String(t.itilcategories_id).padEnd(3)} ${t.name}\n` +
          st.dim(`        ${glpi.followupsOf(t.id).length} follow-up(s), ${glpi.solutions.filter((s) => s.items_id === t.id).length} solution(s), asset: ${assetOf(t.items?.[0])}\n`),
      );
    }
    const sent = glpi.requests.length;
    const problems = glpi.itil.problems.size;
    out.write(`\n${glpi.tickets.size} tickets and ${problems} problem${problems === 1 ? '' : 's'} from ${nextEvent - 5000} Zabbix events and their updates; ${sent} GLPI requests in all (one session).\n`);
    out.write(st.dim(`Next: point the bridge at your GLPI and Zabbix — see README.md (Quick start, Zabbix setup, GLPI setup).\n`));
    return 0;
  } finally {
    await app.stop();
    await glpi.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
