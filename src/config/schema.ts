import cron from 'node-cron';
import * as z from 'zod';
import { SEVERITIES, type Severity } from '../core/alert.js';
import { FINGERPRINT_FIELDS, type FingerprintField } from '../core/fingerprint.js';
import { DEFAULT_BODY, TEMPLATE_VARIABLES, templateVariables } from '../core/render.js';
import { compilePattern, NAMED_FIELDS, type CategoryRule, type GlpiFieldsPatch, type GlpiRef, type NamedField, type ProblemRule, type Rules, type TagMatcher, type Threshold } from '../core/rules.js';
import { parseQuantity } from '../core/units.js';
import { Secret } from './secret.js';

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "30s", "5m", "24h", "7d" or 0 → milliseconds. */
export const duration = z
  .union([z.literal(0), z.string()])
  .transform((v, ctx) => {
    if (v === 0) return 0;
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(v);
    if (!m) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration; write e.g. 500ms, 30s, 5m, 24h` });
      return z.NEVER;
    }
    return Math.round(Number(m[1]) * (UNITS[m[2] ?? 's'] ?? 1000));
  });

const secret = z.string().transform((v) => new Secret(v));
/** A bearer token the bridge checks: empty (none / generated) or at least 16 characters. */
const bearerToken = z
  .string()
  .refine((v) => v === '' || v.length >= 16, { message: 'too short: a token the bridge checks needs at least 16 characters (e.g. openssl rand -base64 24)' })
  .transform((v) => new Secret(v));

/** An http(s) URL without user:password@ (axios would send it as Basic auth, and it would be logged and printed). */
function apiUrl(endsIn: string) {
  return z.url({ protocol: /^https?$/, error: `must be an http(s) URL ending in ${endsIn}` }).superRefine((v, ctx) => {
    if (!URL.canParse(v)) return;
    const u = new URL(v);
    if (u.username !== '' || u.password !== '') {
      ctx.addIssue({ code: 'custom', message: 'must not carry user:password@ (it would be logged and sent instead of the token); give the credentials in their own keys' });
    }
  });
}
const severity = z.enum(SEVERITIES);
const id = z.number().int().nonnegative();

/** A GLPI item by id, or by name / complete name ("Monitoring > CPU"), resolved against GLPI (core/rules.ts GlpiRef). */
const nameOrId = z.union([id, z.string().trim().min(1)]);
const glpiPatch = z
  .strictObject({
    ticket: z.boolean().optional(),
    urgency: z.number().int().min(1).max(5).optional(),
    impact: z.number().int().min(1).max(5).optional(),
    itilcategories_id: id.optional(),
    entities_id: id.optional(),
    groups_id_assign: id.optional(),
    type: z.enum(['incident', 'request']).optional(),
    requesttypes_id: id.optional(),
    itilcategory: nameOrId.optional(),
    entity: nameOrId.optional(),
    group_assign: nameOrId.optional(),
    request_source: nameOrId.optional(),
    users: z.strictObject({ assign: z.array(nameOrId).optional(), observer: z.array(nameOrId).optional(), requester: z.array(nameOrId).optional() }).optional(),
  })
  .superRefine((p, ctx) => {
    for (const [field, { key }] of Object.entries(NAMED_FIELDS)) {
      if (p[field as NamedField] !== undefined && p[key as 'itilcategory'] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `give ${field} or ${key}, not both` });
    }
  });
type GlpiPatchInput = z.infer<typeof glpiPatch>;

function toPatch(p: GlpiPatchInput | undefined): GlpiFieldsPatch {
  if (!p) return {};
  const { type, itilcategory, entity, group_assign, request_source, users, ...rest } = p;
  const out: Record<string, unknown> = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  if (type !== undefined) out.type = type === 'incident' ? 1 : 2;
  const ref = (v: number | string): GlpiRef => (typeof v === 'number' ? v : { name: v });
  const named = { itilcategories_id: itilcategory, entities_id: entity, groups_id_assign: group_assign, requesttypes_id: request_source };
  for (const [field, v] of Object.entries(named)) if (v !== undefined) out[field] = ref(v);
  if (users !== undefined) out.users = Object.fromEntries(Object.entries(users).filter(([, v]) => v !== undefined).map(([role, v]) => [role, (v ?? []).map(ref)]));
  return out as GlpiFieldsPatch;
}

const severityPatches = z.partialRecord(severity, glpiPatch).default({});
function toSeverityPatches(s: Partial<Record<Severity, GlpiPatchInput>>): Partial<Record<Severity, GlpiFieldsPatch>> {
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, toPatch(v)]));
}

const pattern = z.string().min(1).superRefine((v, ctx) => {
  try {
    compilePattern(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `invalid pattern: ${(e as Error).message}` });
  }
});

const quantity = z.union([z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const q = parseQuantity(v);
  if (!q) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a number with an optional unit (e.g. 95, "900 Mbps", "10 GB")` });
    return z.NEVER;
  }
  return q.value;
});

const threshold = z
  .strictObject({ above: quantity.optional(), below: quantity.optional(), severity })
  .refine((t) => (t.above === undefined) !== (t.below === undefined), { message: 'give exactly one of above or below' });

const categoryRule = z.strictObject({
  name: z.string().regex(/^[a-z0-9_-]+$/, 'use lower-case letters, digits, - and _'),
  match: z
    .strictObject({
      tags: z.array(z.strictObject({ tag: z.string().min(1), value: z.union([z.string(), z.array(z.string())]).optional() })).default([]),
      item_key: z.array(pattern).default([]),
      trigger_name: z.array(pattern).default([]),
      host: z.array(pattern).default([]),
    })
    .default({ tags: [], item_key: [], trigger_name: [], host: [] }),
  thresholds: z.array(threshold).default([]),
  glpi: glpiPatch.optional(),
  severities: severityPatches,
  /**
   * Issue 14 item 1: a fingerprint opening after_cycles ticket cycles within `within` becomes a GLPI Problem;
   * `together`: so do `fingerprints` incidents of one host (by: host) or of the category (by: category) opening
   * their tickets within its own `within` of each other.
   */
  problems: z
    .strictObject({
      after_cycles: z.number().int().min(2).max(50).optional(),
      within: duration.optional(),
      together: z.strictObject({ fingerprints: z.number().int().min(2).max(50), within: duration, by: z.enum(['host', 'category']).default('host') }).optional(),
    })
    .superRefine((p, ctx) => {
      if ((p.after_cycles === undefined) !== (p.within === undefined)) ctx.addIssue({ code: 'custom', path: [p.after_cycles === undefined ? 'after_cycles' : 'within'], message: 'give after_cycles and within together (recurrence of one fingerprint), or neither' });
      if (p.after_cycles === undefined && p.together === undefined) ctx.addIssue({ code: 'custom', message: 'give after_cycles and within, or together, or both' });
    })
    .optional(),
  /** Zabbix 6.4+ symptoms: link (their ticket to their cause's, the default), skip (no ticket), ticket (their own, unlinked). */
  symptoms: z.enum(['link', 'skip', 'ticket']).optional(),
});
type CategoryInput = z.infer<typeof categoryRule>;

function toProblemRule(p: NonNullable<CategoryInput['problems']>): ProblemRule {
  return {
    ...(p.after_cycles !== undefined && p.within !== undefined ? { afterCycles: p.after_cycles, withinMs: p.within } : {}),
    ...(p.together ? { together: { fingerprints: p.together.fingerprints, withinMs: p.together.within, by: p.together.by } } : {}),
  };
}

function toCategory(c: CategoryInput): CategoryRule {
  const tags: TagMatcher[] = c.match.tags.map((t) =>
    t.value === undefined ? { tag: t.tag } : { tag: t.tag, values: Array.isArray(t.value) ? t.value : [t.value] },
  );
  const thresholds: Threshold[] = c.thresholds.map((t) => ({
    ...(t.above !== undefined ? { above: t.above } : {}),
    ...(t.below !== undefined ? { below: t.below } : {}),
    severity: t.severity,
    text: t.above !== undefined ? `above ${t.above}` : `below ${t.below ?? ''}`,
  }));
  return {
    name: c.name,
    tags,
    itemKeys: c.match.item_key.map(compilePattern),
    triggerNames: c.match.trigger_name.map(compilePattern),
    hosts: c.match.host.map(compilePattern),
    thresholds,
    glpi: toPatch(c.glpi),
    severities: toSeverityPatches(c.severities),
    ...(c.problems ? { problems: toProblemRule(c.problems) } : {}),
    ...(c.symptoms ? { symptoms: c.symptoms } : {}),
  };
}

const template = z.string().min(1).superRefine((t, ctx) => {
  for (const v of templateVariables(t)) {
    if (!(TEMPLATE_VARIABLES as readonly string[]).includes(v)) {
      ctx.addIssue({ code: 'custom', message: `unknown placeholder {{${v}}}; known: ${TEMPLATE_VARIABLES.join(', ')}` });
    }
  }
});

export const DEFAULT_TITLE = '[{{category}}] {{trigger}}';
/** The default body lives with the renderer (core/render.ts), next to the variables it uses. */
export { DEFAULT_BODY };

export const rulesSchema = z
  .strictObject({
    defaults: glpiPatch.default({}),
    severities: severityPatches,
    categories: z.array(categoryRule).default([]),
    fallback: categoryRule.omit({ match: true }).default({ name: 'other', thresholds: [], severities: {} }),
    templates: z.strictObject({ title: template.default(DEFAULT_TITLE), body: template.default(DEFAULT_BODY) }).default({ title: DEFAULT_TITLE, body: DEFAULT_BODY }),
  })
  .superRefine((r, ctx) => {
    const seen = new Map<string, number>();
    r.categories.forEach((c, i) => {
      const first = seen.get(c.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['categories', i, 'name'], message: `category "${c.name}" already defined at categories[${first}]` });
      seen.set(c.name, i);
    });
  })
  .transform(
    (r): Rules => ({
      defaults: {
        ticket: true,
        urgency: 3,
        impact: 3,
        itilcategories_id: 0,
        entities_id: 0,
        groups_id_assign: 0,
        type: 1,
        requesttypes_id: 0,
        ...toPatch(r.defaults),
      },
      severities: toSeverityPatches(r.severities),
      categories: r.categories.map(toCategory),
      fallback: toCategory({ ...r.fallback, match: { tags: [], item_key: [], trigger_name: [], host: [] } }),
      templates: r.templates,
    }),
  );

const listen = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'use host:port, e.g. 127.0.0.1:8088');

const fingerprintField = z.string().refine(
  (f) => (FINGERPRINT_FIELDS as readonly string[]).includes(f) || /^tag:.+$/.test(f),
  { message: `use ${FINGERPRINT_FIELDS.join(', ')} or tag:<name>` },
) as unknown as z.ZodType<FingerprintField>;

export const configSchema = z.strictObject({
  listen: listen.default('127.0.0.1:8088'),
  data_dir: z.string().min(1).default('./var'),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  webhook: z
    .strictObject({
      path: z.string().startsWith('/').default('/zabbix/webhook'),
      token: bearerToken.default(new Secret('')),
      body_limit: z.number().int().min(1024).max(16 * 1024 * 1024).default(256 * 1024),
      /** Whole request, headers and body, must arrive within this (slow senders get 408 and are disconnected). */
      request_timeout: duration.default(30_000).refine((v) => v >= 1000, { message: 'at least 1s' }),
      /** Headers must arrive within this. */
      header_timeout: duration.default(10_000).refine((v) => v >= 1000, { message: 'at least 1s' }),
      /** An idle kept-alive connection is closed after this. */
      keep_alive_timeout: duration.default(5_000).refine((v) => v >= 100, { message: 'at least 100ms' }),
      /** Requests one connection may carry before it is closed (0: no cap). */
      max_requests_per_socket: z.number().int().nonnegative().default(1000),
      /** Connections open at once; more are refused at accept. */
      max_connections: z.number().int().min(1).max(65_536).default(256),
    })
    .superRefine((w, ctx) => {
      if (w.header_timeout > w.request_timeout) ctx.addIssue({ code: 'custom', path: ['header_timeout'], message: 'must not be longer than request_timeout' });
    })
    .prefault({}),
  admin: z
    .strictObject({
      /** Bearer token of admin actions (POST /-/reload, queue retry over HTTP). Empty: admin endpoints answer 403; SIGHUP still reloads. */
      token: bearerToken.default(new Secret('')),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      /** Put /metrics and /readyz behind the admin token. */
      auth: z.boolean().default(false),
    })
    .prefault({}),
  store: z
    .strictObject({
      /** sqlite: two files in data_dir (the default, one node); postgres: a PostgreSQL database (store.postgres). */
      backend: z.enum(['sqlite', 'postgres']).default('sqlite'),
      file: z.string().min(1).default('bridge.db'),
      synchronous: z.enum(['full', 'normal']).default('full'),
      /** Cap on the state file in bytes (0: none). When reached, the webhook answers 503 and Zabbix retries. */
      max_size: z.number().int().nonnegative().default(0),
      /** Processed alerts are kept this long for redelivery detection (those of open incidents are kept while open). */
      retention: duration.default(7 * 86_400_000),
      /** How often old deliveries, finished jobs and ended incidents are forgotten. */
      prune_interval: duration.default(600_000).refine((v) => v >= 1000, { message: 'at least 1s' }),
      /** backend: postgres. Anything not given comes from PostgreSQL's own PG* environment variables (PGHOST, PGUSER, PGPASSWORD…). */
      postgres: z
        .strictObject({
          /** postgresql://user@host:port/database (no password in it: give password, e.g. ${PGPASSWORD}, which takes _FILE and credentials). */
          url: z
            .string()
            .default('')
            .superRefine((v, ctx) => {
              if (v === '') return;
              if (!/^postgres(ql)?:\/\//.test(v) || !URL.canParse(v)) return void ctx.addIssue({ code: 'custom', message: 'must be a postgresql://user@host:port/database URL' });
              if (new URL(v).password !== '') ctx.addIssue({ code: 'custom', message: 'must not carry a password (it would be logged and printed); give store.postgres.password' });
            }),
          password: secret.default(new Secret('')),
          /** A statement running longer is cancelled by the server (and the call fails). */
          statement_timeout: duration.default(30_000).refine((v) => v >= 100, { message: 'at least 100ms' }),
          /** Connecting longer than this counts as PostgreSQL unreachable (webhooks answer 503 meanwhile). */
          connect_timeout: duration.default(5_000).refine((v) => v >= 100, { message: 'at least 100ms' }),
          /** disable: no TLS; require: TLS, certificate not checked; verify-ca: signed by ca_file; verify-full: and issued for the host. */
          sslmode: z.enum(['disable', 'require', 'verify-ca', 'verify-full']).default('disable'),
          /** PEM file of the CA(s) that sign the server's certificate (relative to the configuration file); empty: the system's. */
          ca_file: z.string().default(''),
          /** This bridge's name among those sharing the database (job claims, logs, metrics); empty: the host's name. */
          node_name: z.string().max(100).default(''),
          /** A job claim not renewed for this long (its node died or stalled) is retaken by another node; at least twice glpi.timeout is used. */
          lease: duration.default(60_000).refine((v) => v >= 1000, { message: 'at least 1s' }),
        })
        .prefault({}),
    })
    .prefault({}),
  glpi: z
    .strictObject({
      /** v1: the legacy REST API (apirest.php, GLPI 10 and 11); v2: GLPI 11's high-level API (api.php/v2, OAuth2). */
      api: z.enum(['v1', 'v2']).default('v1'),
      url: apiUrl('/apirest.php (api: v1), or GLPI\'s root address (api: v2)'),
      app_token: secret.default(new Secret('')),
      user_token: secret.default(new Secret('')),
      username: z.string().default(''),
      password: secret.default(new Secret('')),
      /** PEM file of the CA(s) that sign the server's certificate (relative to the configuration file); empty: the system's. */
      ca_file: z.string().default(''),
      /** Skip certificate verification (testing only: logged loudly at start). */
      tls_insecure: z.boolean().default(false),
      timeout: duration.default(10_000),
      max_concurrency: z.number().int().min(1).max(64).default(4),
      recovery: z.enum(['solve', 'close', 'followup']).default('solve'),
      followup_private: z.boolean().default(false),
      solution_type_id: id.default(0),
      /** When GLPI refuses the solution for a workflow reason (template, status matrix, rule): the next steps, in order (issue 14 item 4). */
      recovery_fallback: z.array(z.enum(['status', 'followup'])).default(['status', 'followup']),
      /** How long GLPI's answer to a lookup by name (rules' names, hosts' assets) is used before asking again. */
      lookup_ttl: duration.default(3_600_000),
      /** Ticket externalid (GLPI 11) set to the marker and searched: auto = when GLPI says it is 11 or later. */
      externalid: z.enum(['auto', 'on', 'off']).default('auto'),
      /** A follow-up on a Pending ticket: keep it pending (GLPI would set it back to Assigned), or resume it. */
      pending_followups: z.enum(['keep', 'resume']).default('keep'),
      /** The web server strips `Authorization`: log in with `initSession?user_token=…` instead (the token then appears in its access log). */
      user_token_in_query: z.boolean().default(false),
      /** api: v2 — the OAuth client GLPI's administrator created for the bridge (Setup › OAuth clients), password grant. */
      client_id: secret.default(new Secret('')),
      client_secret: secret.default(new Secret('')),
    })
    .superRefine((g, ctx) => {
      if (g.api === 'v1') {
        if (g.user_token.empty && (g.username === '' || g.password.empty)) {
          ctx.addIssue({ code: 'custom', path: ['user_token'], message: 'set user_token, or username and password' });
        }
        for (const key of ['client_id', 'client_secret'] as const) {
          if (!g[key].empty) ctx.addIssue({ code: 'custom', path: [key], message: 'is used by api: v2 only (the legacy API logs in with user_token or username and password); remove it or set api: v2' });
        }
        if (/\/api\.php\/v2(\/|$)/.test(g.url)) ctx.addIssue({ code: 'custom', path: ['url'], message: 'is the v2 API (…/api.php/v2) but api is v1: set api: v2, or use …/apirest.php' });
        return;
      }
      // The high-level API logs in with an OAuth2 password grant: client credentials plus the bridge user's login.
      for (const key of ['client_id', 'client_secret', 'password'] as const) {
        if (g[key].empty) ctx.addIssue({ code: 'custom', path: [key], message: 'is required with api: v2 (OAuth2 password grant: client_id, client_secret, username, password)' });
      }
      if (g.username === '') ctx.addIssue({ code: 'custom', path: ['username'], message: 'is required with api: v2 (OAuth2 password grant: client_id, client_secret, username, password)' });
      for (const key of ['app_token', 'user_token'] as const) {
        if (!g[key].empty) ctx.addIssue({ code: 'custom', path: [key], message: 'is used by api: v1 only (api: v2 logs in with client_id, client_secret, username and password); remove it' });
      }
      if (g.user_token_in_query) ctx.addIssue({ code: 'custom', path: ['user_token_in_query'], message: 'is used by api: v1 only; remove it' });
    }),
  retry: z
    .strictObject({
      attempts: z.number().int().min(0).max(20).default(3),
      min_delay: duration.default(500),
      max_delay: duration.default(10_000),
      backoff_cap: duration.default(300_000),
    })
    .prefault({}),
  correlation: z
    .strictObject({
      fingerprint: z.array(fingerprintField).min(1).default(['host', 'trigger']),
      hold_down: duration.default(0),
      reopen_window: duration.default(86_400_000),
      coalesce_window: duration.default(0),
    })
    .prefault({}),
  zabbix: z
    .strictObject({
      /** …/api_jsonrpc.php; empty: no polling and no write-back (webhook only). */
      url: z.union([z.literal(''), apiUrl('/api_jsonrpc.php')]).default(''),
      /** Zabbix's web frontend, for the event and graph links in ticket bodies; empty: the API URL's folder (the frontend serves the API). */
      frontend_url: z.union([z.literal(''), apiUrl('/ (the frontend\'s base address, e.g. https://zabbix.example.org/zabbix/)')]).default(''),
      api_token: secret.default(new Secret('')),
      auth: z.enum(['auto', 'body', 'header']).default('auto'),
      /** PEM file of the CA(s) that sign the server's certificate (relative to the configuration file); empty: the system's. */
      ca_file: z.string().default(''),
      /** Skip certificate verification (testing only: logged loudly at start). */
      tls_insecure: z.boolean().default(false),
      timeout: duration.default(10_000),
      poll: z
        .strictObject({
          enabled: z.boolean().default(true),
          schedule: z.string().default('*/1 * * * *').refine((v) => cron.validate(v), { message: 'not a valid cron expression (5 fields, or 6 with seconds)' }),
          /**
           * Only problems of hosts in these host groups (names); empty: all the API user can see. Mirror the action's conditions.
           * A list, or one comma-separated string (what `${ZABBIX_POLL_HOST_GROUPS:-}` gives).
           */
          host_groups: z
            .union([
              z.array(z.string().trim().min(1)),
              z.string().transform((v) => v.split(',').map((g) => g.trim()).filter((g) => g !== '')),
            ])
            .default([]),
          /** Only problems at or above this severity. */
          min_severity: severity.default('not_classified'),
          /**
           * First sweep of a scope (first start, or host_groups / min_severity changed): skip records the problems
           * already open as a baseline that never becomes tickets; import tickets them.
           */
          baseline: z.enum(['skip', 'import']).default('skip'),
          /** An open problem's host entered a maintenance: a follow-up on its ticket (note), or the ticket solved saying so (solve). */
          on_maintenance: z.enum(['note', 'solve']).default('note'),
          /** An open problem's trigger, host or item was disabled (Zabbix then never recovers it): a follow-up (note), or the ticket solved (solve). */
          on_disabled: z.enum(['note', 'solve']).default('note'),
        })
        .prefault({}),
      write_back: z
        .strictObject({
          enabled: z.boolean().default(true),
          acknowledge: z.boolean().default(false),
          /** Issue 14 item 5: read the bridge's tickets back (on zabbix.poll.schedule): a technician's solve or close → a message on the open Zabbix event. */
          glpi_status: z.boolean().default(false),
          /** With glpi_status: also close the Zabbix problem, where its trigger allows manual close. */
          close_problem: z.boolean().default(false),
          /** With glpi_status: a technician's public follow-up on the ticket mirrored to the open Zabbix event as a message (opt-in). */
          mirror_followups: z.boolean().default(false),
        })
        .prefault({}),
      timezone_offset_minutes: z.number().int().min(-840).max(840).default(0),
      write_back_prefix: z.string().min(1).default('[glpi-bridge]'),
      /** The item's last values in new tickets' bodies (item.get + history.get when the create runs); needs url. */
      value_history: z
        .strictObject({
          enabled: z.boolean().default(false),
          /** How many values, newest first. */
          count: z.number().int().min(1).max(10).default(10),
          /** The longest a create waits for them; then the ticket goes without. */
          timeout: duration.default(2_000),
        })
        .prefault({}),
    })
    .superRefine((zb, ctx) => {
      if (zb.value_history.enabled && zb.url === '') ctx.addIssue({ code: 'custom', path: ['value_history', 'enabled'], message: 'needs zabbix.url (the values come from the Zabbix API)' });
      if (zb.url !== '' && zb.api_token.empty) ctx.addIssue({ code: 'custom', path: ['api_token'], message: 'set api_token (Zabbix: Users › API tokens) when zabbix.url is set' });
    })
    .prefault({}),
  /** The host's asset on the ticket (issue 14 item 2): searched by name, then IP, across these itemtypes; `map` for exceptions. */
  assets: z
    .strictObject({
      enabled: z.boolean().default(true),
      itemtypes: z.array(z.string().regex(/^[A-Z][A-Za-z0-9_]*$/, 'a GLPI itemtype, e.g. Computer')).min(1).default(['Computer', 'NetworkEquipment']),
      by: z.array(z.enum(['name', 'ip'])).default(['name', 'ip']),
      map: z
        .record(z.string().min(1), z.strictObject({ itemtype: z.string().regex(/^[A-Z][A-Za-z0-9_]*$/), id: id.positive().optional(), name: z.string().min(1).optional() }).refine((m) => (m.id === undefined) !== (m.name === undefined), { message: 'give id or name' }))
        .default({}),
    })
    .prefault({}),
  rules_file: z.string().optional(),
  rules: z.unknown().optional(),
});

export type ConfigInput = z.input<typeof configSchema>;
export type DaemonConfig = z.output<typeof configSchema>;

export interface Config extends Omit<DaemonConfig, 'rules' | 'rules_file'> {
  readonly rules: Rules;
  /** Where each part came from, for messages. */
  readonly sources: { readonly config: string; readonly rules: string };
}
