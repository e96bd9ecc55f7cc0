import type { ProblemSpec, TicketDraft } from '../core/decide.js';
import type { AssetRef, Clock, GlpiDirectory, ProblemDesk, TicketDesk } from '../core/ports.js';
import { RemoteError } from '../core/remote-error.js';
import { withDraftStep, withProblemDraftStep } from './draft-step.js';
import { ACTOR_ROLES, NAMED_FIELDS, namesInRules, type ActorRole, type DirectoryItemtype, type NamedField, type Rules } from '../core/rules.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/*
 * Names in the rules and the host's asset, resolved against GLPI (issue 14 items 2 and 3).
 *
 * Where names become ids, and why here: the pure core carries the names in the
 * ticket draft (core/rules.ts draftFields), and they are resolved when the
 * create job runs, through a cache of GLPI's answers (this file), wrapped
 * around the GLPI adapter (routingDesk). Resolving them once in the
 * composition into ids for the core would make a first start with GLPI down
 * a start without routing (or no start at all), and every reload with GLPI
 * briefly down a choice between stale ids and none. At dispatch, GLPI being
 * down makes the job wait anyway, so a name never resolves "to nothing"
 * because GLPI was away; and a job queued before a reload still routes by
 * the names it was decided with. The rules' names are still resolved at start
 * and at every reload (warm(): a warning per unknown or ambiguous name, with
 * its YAML path), which fills the cache; a reload while GLPI is unreachable
 * keeps the last good resolution (an entry is replaced only by an answer).
 *
 * An unknown or ambiguous name, or a host without an asset, never holds a
 * ticket back: the ticket is created without that field (GLPI's default
 * applies), the log says which name and why, and zgb_glpi_lookups_total /
 * zgb_glpi_assets_total count it. check-config --online lists the same names
 * before they matter.
 */

export interface AssetSettings {
  readonly enabled: boolean;
  /** Itemtypes searched, in order. */
  readonly itemtypes: readonly string[];
  /** How, in order: by the host's name (technical, then visible), by its IP. */
  readonly by: readonly ('name' | 'ip')[];
  /** Exceptions: Zabbix host (technical name) → the asset, by id or by name. */
  readonly map: Readonly<Record<string, { readonly itemtype: string; readonly id?: number | undefined; readonly name?: string | undefined }>>;
}

export interface NameSettings {
  /** How long an answer is used before GLPI is asked again. */
  readonly ttlMs: number;
  readonly assets: AssetSettings;
}

export const NO_ASSETS: AssetSettings = { enabled: false, itemtypes: [], by: [], map: {} };

type Source = 'cached' | 'found' | 'stale';

/**
 * GLPI's answers to lookups, kept for a TTL. A fresh entry answers without
 * asking; an expired or missing one asks GLPI (refreshed on miss). A lookup
 * that matched nothing is not kept, so an item created in GLPI is found at
 * the next ticket. When GLPI cannot be reached, an expired entry is used (the
 * last good resolution) rather than failing.
 */
/**
 * Whether the ticket goes without the name or asset a lookup failed to give; otherwise the failure holds the
 * create back (it is retried): GLPI down or busy, the session or the login. GLPI's refusal goes without; so does
 * an answer GLPI gave but the bridge cannot read (BAD_ANSWER: a plugin, a proxy's page, another version's shape),
 * which will not read better on the next try: said and counted, instead of waiting forever.
 */
function goesWithout(e: unknown): e is RemoteError {
  if (!(e instanceof RemoteError) || e.kind === 'session' || e.kind === 'login') return false;
  return e.kind !== 'retryable' || e.code === 'BAD_ANSWER';
}

/** How long GLPI's "no such name / no such asset" is believed (capped by the TTL). */
export const NEGATIVE_TTL_MS = 60_000;

export class LookupCache<T> {
  readonly #entries = new Map<string, { value: T[]; at: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: () => number,
    private readonly max = 10_000,
  ) {}

  async get(key: string, ask: () => Promise<T[]>, refresh = false): Promise<{ value: T[]; source: Source }> {
    const entry = this.#entries.get(key);
    const now = this.clock.now();
    if (entry && !refresh && now - entry.at < this.ttlMs()) return { value: entry.value, source: 'cached' };
    let value: T[];
    try {
      value = await ask();
    } catch (e) {
      if (entry && e instanceof RemoteError && e.kind === 'retryable') return { value: entry.value, source: 'stale' };
      throw e;
    }
    if (this.#entries.size >= this.max && !this.#entries.has(key)) this.#entries.delete(this.#entries.keys().next().value as string);
    // "Nothing" is kept too, for at most NEGATIVE_TTL_MS: a job's retry, or the next ticket of an asset-less host
    // in a storm, does not ask GLPI again; an asset or a name added in GLPI is seen within a minute.
    this.#entries.set(key, { value, at: value.length > 0 ? now : now - Math.max(0, this.ttlMs() - NEGATIVE_TTL_MS) });
    return { value, source: 'found' };
  }

  /** The last answer kept, whatever its age (explain, the status of a reload). */
  peek(key: string): T[] | undefined {
    return this.#entries.get(key)?.value;
  }
}

/** How one name resolved: an id, or why not. */
export type Resolution =
  | { readonly kind: 'found'; readonly id: number; readonly source: Source }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'ambiguous'; readonly ids: readonly number[] }
  | { readonly kind: 'unsupported' | 'error'; readonly message: string };

function describe(r: Resolution, itemtype: string): string {
  switch (r.kind) {
    case 'found': return `${itemtype} ${r.id}`;
    case 'unknown': return `no ${itemtype} has this name or complete name`;
    case 'ambiguous': return `${r.ids.length} ${itemtype} items have this name (ids ${r.ids.join(', ')}): give the complete name ("Parent > Child") or the id`;
    default: return r.message;
  }
}

/** Resolves the names of drafts and finds hosts' assets, through the cache. */
export class NameResolver {
  readonly #names: LookupCache<number>;
  readonly #assets: LookupCache<AssetRef>;
  /** An API without lookups (v2) is said once per process, then only counted. */
  #unsupportedSaid = false;

  constructor(
    private readonly directory: GlpiDirectory,
    clock: Clock,
    private readonly logger: Logger,
    private readonly metrics: Metrics | undefined,
    private readonly settings: () => NameSettings,
  ) {
    this.#names = new LookupCache<number>(clock, () => this.settings().ttlMs);
    this.#assets = new LookupCache<AssetRef>(clock, () => this.settings().ttlMs);
  }

  /** One name; GLPI unreachable without an earlier answer throws (the job waits). */
  async resolve(itemtype: DirectoryItemtype, name: string, refresh = false): Promise<Resolution> {
    let r: Resolution;
    try {
      const { value, source } = await this.#names.get(`${itemtype}:${name.trim().toLowerCase()}`, () => this.directory.findByName(itemtype, name), refresh);
      const ids = [...new Set(value)];
      r = ids.length === 1 ? { kind: 'found', id: ids[0]!, source } : ids.length === 0 ? { kind: 'unknown' } : { kind: 'ambiguous', ids };
    } catch (e) {
      if (!goesWithout(e)) throw e;
      r = { kind: e.code === 'GLPI_LOOKUP_UNSUPPORTED' ? 'unsupported' : 'error', message: e.message };
    }
    this.metrics?.glpiLookups.inc({ itemtype, result: r.kind === 'found' ? r.source : r.kind });
    return r;
  }

  /** The last resolution kept for a name (no request): explain's "last known id". */
  lastKnown(itemtype: DirectoryItemtype, name: string): number | undefined {
    const ids = this.#names.peek(`${itemtype}:${name.trim().toLowerCase()}`);
    return ids?.length === 1 ? ids[0] : undefined;
  }

  /** The draft with its names replaced by ids and its host's asset attached; what cannot be resolved is left out, said and counted. */
  async resolveDraft(t: TicketDraft): Promise<TicketDraft> {
    const out: { -readonly [K in keyof TicketDraft]: TicketDraft[K] } = { ...t };
    const names = t.names;
    if (names) {
      for (const field of Object.keys(NAMED_FIELDS) as NamedField[]) {
        const name = names[field];
        if (name === undefined) continue;
        const itemtype = NAMED_FIELDS[field].itemtype;
        const r = await this.resolve(itemtype, name);
        if (r.kind === 'found') out[field] = r.id;
        else this.#unresolved(t, itemtype, name, r);
      }
      const users: Partial<Record<ActorRole, number[]>> = Object.fromEntries(Object.entries(t.users ?? {}).map(([k, v]) => [k, [...(v ?? [])]]));
      for (const role of ACTOR_ROLES) {
        for (const name of names.users?.[role] ?? []) {
          const r = await this.resolve('User', name);
          if (r.kind === 'found') (users[role] ??= []).push(r.id);
          else this.#unresolved(t, 'User', name, r);
        }
      }
      delete out.names;
      if (Object.keys(users).length > 0) out.users = users;
    }
    if (!t.asset && t.host) {
      const asset = await this.findAsset(t.host, t.marker);
      if (asset) out.asset = asset;
    }
    return out;
  }

  /**
   * A GLPI Problem's draft with its names (entity, ITIL category, taken from its ticket's rule) replaced by ids,
   * through the same cache; a name that does not resolve is left out (GLPI's default applies), said and counted,
   * as for a ticket: never a dead letter because of a name.
   */
  async resolveProblem(p: ProblemSpec): Promise<ProblemSpec> {
    if (!p.names) return p;
    const out: { -readonly [K in keyof ProblemSpec]: ProblemSpec[K] } = { ...p };
    for (const field of ['entities_id', 'itilcategories_id'] as const) {
      const name = p.names[field];
      if (name === undefined) continue;
      const itemtype = NAMED_FIELDS[field].itemtype;
      const r = await this.resolve(itemtype, name);
      if (r.kind === 'found') out[field] = r.id;
      else this.#unresolved({ marker: problemMarkerOf(p.name) }, itemtype, name, r, 'problem');
    }
    delete out.names;
    return out;
  }

  #unresolved(t: Pick<TicketDraft, 'marker'>, itemtype: string, name: string, r: Resolution, what: 'ticket' | 'problem' = 'ticket'): void {
    if (r.kind === 'unsupported' && this.#once()) return;
    const code = r.kind === 'ambiguous' ? 'GLPI_NAME_AMBIGUOUS' : r.kind === 'unknown' ? 'GLPI_NAME_UNKNOWN' : r.kind === 'unsupported' ? 'GLPI_LOOKUP_UNSUPPORTED' : 'GLPI_LOOKUP_FAILED';
    this.logger.warn({ code, itemtype, name, marker: t.marker, reason: describe(r, itemtype) }, `the rules name ${itemtype} "${name}" but it does not resolve in GLPI: the ${what} is created without it (check-config --online lists such names)`);
  }

  /**
   * The host's asset: assets.map first, then by name (technical, then
   * visible) and by IP, in the configured order, across the configured
   * itemtypes. Exactly one match is attached; none or several: none.
   */
  async findAsset(host: NonNullable<TicketDraft['host']>, marker = ''): Promise<AssetRef | undefined> {
    const a = this.settings().assets;
    if (!a.enabled) return undefined;
    const count = (result: string) => this.metrics?.assets.inc({ result });
    try {
      const mapped = a.map[host.name] ?? (host.visibleName !== undefined ? a.map[host.visibleName] : undefined);
      if (mapped) {
        if (mapped.id !== undefined) {
          count('map');
          return { itemtype: mapped.itemtype, id: mapped.id };
        }
        const found = await this.#assetLookup([mapped.itemtype], 'name', mapped.name ?? host.name);
        if (found.length === 1) {
          count('map');
          return found[0];
        }
        this.logger.warn({ code: 'GLPI_ASSET_MAP_UNRESOLVED', host: host.name, itemtype: mapped.itemtype, name: mapped.name, matches: found.length }, 'assets.map names an asset GLPI does not have exactly once: the ticket is created without an asset');
        count(found.length === 0 ? 'none' : 'ambiguous');
        return undefined;
      }
      for (const by of a.by) {
        const values = by === 'name' ? [...new Set([host.name, host.visibleName].filter((v): v is string => v !== undefined && v !== ''))] : host.ip ? [host.ip] : [];
        for (const value of values) {
          const found = await this.#assetLookup(a.itemtypes, by, value);
          if (found.length === 1) {
            count(by);
            return found[0];
          }
          if (found.length > 1) {
            this.logger.warn({ code: 'GLPI_ASSET_AMBIGUOUS', host: host.name, by, value, assets: found.map((f) => `${f.itemtype} ${f.id}`) }, 'several GLPI assets match the host: none attached (add the host to assets.map)');
            count('ambiguous');
            return undefined;
          }
        }
      }
      this.logger.info({ code: 'GLPI_ASSET_NOT_FOUND', host: host.name, ip: host.ip, itemtypes: a.itemtypes, marker }, 'no GLPI asset matches the host by name or IP: the ticket is created without one');
      count('none');
      return undefined;
    } catch (e) {
      if (!goesWithout(e)) throw e;
      const unsupported = e.code === 'GLPI_LOOKUP_UNSUPPORTED';
      count(unsupported ? 'unsupported' : 'error');
      if (unsupported && this.#once()) return undefined;
      this.logger.warn({ code: e.code, host: host.name, err: e.message }, 'the host\'s asset could not be looked up in GLPI: the ticket is created without one');
      return undefined;
    }
  }

  /** Whether GLPI_LOOKUP_UNSUPPORTED was said already (true: stay quiet); the first call says it and returns false. */
  #once(): boolean {
    if (this.#unsupportedSaid) return true;
    this.#unsupportedSaid = true;
    return false;
  }

  async #assetLookup(itemtypes: readonly string[], by: 'name' | 'ip', value: string): Promise<AssetRef[]> {
    // One cache entry per itemtype: an answer GLPI gave is kept when the next itemtype's search fails.
    const found: AssetRef[] = [];
    let source: Source = 'cached';
    for (const itemtype of itemtypes) {
      const key = `asset:${by}:${itemtype}:${value.toLowerCase()}`;
      const answer = await this.#assets.get(key, () => this.directory.findAssets([itemtype], by, value));
      found.push(...answer.value);
      if (answer.source !== 'cached') source = answer.source;
    }
    this.metrics?.glpiLookups.inc({ itemtype: 'asset', result: found.length === 0 ? 'unknown' : found.length > 1 ? 'ambiguous' : source });
    return found;
  }

  /**
   * Resolve every name the rules use (at start and at each reload), asking
   * GLPI again: a warning per unknown or ambiguous name with its YAML path.
   * GLPI unreachable: the names keep their last resolution (said once).
   */
  async warm(rules: Rules, why: 'start' | 'reload'): Promise<{ resolved: number; problems: number; unreachable: boolean }> {
    const uses = namesInRules(rules);
    let resolved = 0;
    let problems = 0;
    for (const use of uses) {
      let r: Resolution;
      try {
        r = await this.resolve(use.itemtype, use.name, true);
        if (r.kind === 'found' && r.source === 'stale') throw new RemoteError('retryable', 'GLPI_UNREACHABLE', 'GLPI did not answer');
      } catch (e) {
        const kept = uses.filter((u) => this.lastKnown(u.itemtype, u.name) !== undefined).length;
        this.logger.warn(
          { code: 'GLPI_NAMES_KEPT', why, err: (e as Error).message, names: uses.length, kept },
          `GLPI could not be asked for the rules' names at ${why}: the last resolution is kept (${kept} of ${uses.length} names); tickets needing a name GLPI never answered wait for GLPI`,
        );
        return { resolved, problems, unreachable: true };
      }
      if (r.kind === 'found') resolved++;
      else {
        problems++;
        const code = r.kind === 'ambiguous' ? 'GLPI_NAME_AMBIGUOUS' : r.kind === 'unknown' ? 'GLPI_NAME_UNKNOWN' : 'GLPI_LOOKUP_UNSUPPORTED';
        this.logger.warn({ code, path: use.path, itemtype: use.itemtype, name: use.name, reason: describe(r, use.itemtype) }, `rules: ${use.path} "${use.name}": ${describe(r, use.itemtype)}; tickets go without it`);
      }
    }
    if (uses.length > 0) this.logger.info({ why, names: uses.length, resolved, problems }, 'rules\' names resolved against GLPI');
    return { resolved, problems, unreachable: false };
  }
}

/** The GLPI adapter with names resolved and the asset found before each create (composition/processing.ts wraps the dispatcher's desk). */
export function routingDesk(desk: TicketDesk, resolver: NameResolver): TicketDesk {
  return withDraftStep(desk, (t) => resolver.resolveDraft(t));
}

/** The Problem desk whose creates resolve the rules' names first (the same resolver and cache as tickets). */
export function problemRoutingDesk(desk: ProblemDesk, resolver: NameResolver): ProblemDesk {
  return withProblemDraftStep(desk, (p) => resolver.resolveProblem(p));
}

/** The marker at the start of a Problem's name, for the log. */
function problemMarkerOf(name: string): string {
  return /^\[zbx:[^\]]*\]/.exec(name)?.[0] ?? '';
}

export { describe as describeResolution };
