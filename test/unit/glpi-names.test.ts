import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { configSchema, rulesSchema } from '../../src/config/schema.js';
import type { TicketDraft } from '../../src/core/decide.js';
import type { AssetRef, GlpiDirectory } from '../../src/core/ports.js';
import { RemoteError } from '../../src/core/remote-error.js';
import { draftFields, namesInRules } from '../../src/core/rules.js';
import { NameResolver, NEGATIVE_TTL_MS, NO_ASSETS, type NameSettings } from '../../src/services/glpi-names.js';
import { createMetrics } from '../../src/observability/metrics.js';

/** A directory answering from a table; `down` makes every lookup fail as GLPI being unreachable. */
class TableDirectory implements GlpiDirectory {
  down = false;
  asked = 0;
  constructor(
    public names: Record<string, number[]>,
    public assets: Record<string, AssetRef[]> = {},
  ) {}
  async findByName(itemtype: string, name: string): Promise<number[]> {
    this.asked++;
    if (this.down) throw new RemoteError('retryable', 'ECONNREFUSED', 'GLPI unreachable', undefined, undefined, { outage: true, mayHaveLanded: false });
    return this.names[`${itemtype}:${name}`] ?? [];
  }
  async findAssets(itemtypes: readonly string[], by: 'name' | 'ip', value: string): Promise<AssetRef[]> {
    this.asked++;
    if (this.down) throw new RemoteError('retryable', 'ECONNREFUSED', 'GLPI unreachable', undefined, undefined, { outage: true, mayHaveLanded: false });
    return (this.assets[`${by}:${value}`] ?? []).filter((a) => itemtypes.includes(a.itemtype));
  }
}

const silent = pino({ level: 'silent' });

function draft(extra: Partial<TicketDraft> = {}): TicketDraft {
  return { name: 't', content: 'c', marker: 'm', urgency: 3, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0, ...extra };
}

function setup(dir: TableDirectory, settings: Partial<NameSettings> = {}) {
  let now = 1_000_000;
  const clock = { now: () => now };
  const metrics = createMetrics({ processMetrics: false });
  const resolver = new NameResolver(dir, clock, silent, metrics, () => ({ ttlMs: 60_000, assets: NO_ASSETS, ...settings }));
  return { resolver, metrics, advance: (ms: number) => (now += ms) };
}

describe('rules naming GLPI items', () => {
  it('accept names next to ids, and find every name with its YAML path', () => {
    const rules = rulesSchema.parse({
      defaults: { entity: 'Root entity > Paris', users: { observer: ['noc', 7] } },
      categories: [{ name: 'cpu', match: { item_key: ['system.cpu*'] }, glpi: { itilcategory: 'Monitoring > CPU', group_assign: 'Linux admins', request_source: 'Monitoring' } }],
    });
    expect(namesInRules(rules).map((u) => `${u.path}=${u.name}`)).toEqual([
      'defaults.entity=Root entity > Paris',
      'defaults.users.observer[0]=noc',
      'categories[0].glpi.itilcategory=Monitoring > CPU',
      'categories[0].glpi.group_assign=Linux admins',
      'categories[0].glpi.request_source=Monitoring',
    ]);
    const fields = draftFields({ ...rules.defaults, ...rules.categories[0]!.glpi });
    expect(fields.itilcategories_id).toBe(0);
    expect(fields.names).toEqual({ itilcategories_id: 'Monitoring > CPU', entities_id: 'Root entity > Paris', groups_id_assign: 'Linux admins', requesttypes_id: 'Monitoring', users: { observer: ['noc'] } });
    expect(fields.users).toEqual({ observer: [7] });
  });

  it('refuse an id and a name for the same field', () => {
    const r = rulesSchema.safeParse({ defaults: { itilcategories_id: 3, itilcategory: 'Monitoring' } });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain('give itilcategories_id or itilcategory, not both');
  });
});

describe('the assets section and glpi.recovery_fallback', () => {
  const base = { glpi: { url: 'https://glpi.example.org/apirest.php', user_token: 'x' } };
  it('default to searching Computer and NetworkEquipment by name then IP, and to status then follow-up', () => {
    const c = configSchema.parse(base);
    expect(c.assets).toEqual({ enabled: true, itemtypes: ['Computer', 'NetworkEquipment'], by: ['name', 'ip'], map: {} });
    expect(c.glpi.recovery_fallback).toEqual(['status', 'followup']);
    expect(c.glpi.lookup_ttl).toBe(3_600_000);
  });
  it('a map entry names its asset by id or by name, not both, not neither', () => {
    expect(configSchema.safeParse({ ...base, assets: { map: { 'db-01': { itemtype: 'Computer', id: 7 }, 'sw-1': { itemtype: 'NetworkEquipment', name: 'core-1' } } } }).success).toBe(true);
    expect(configSchema.safeParse({ ...base, assets: { map: { h: { itemtype: 'Computer' } } } }).success).toBe(false);
    expect(configSchema.safeParse({ ...base, assets: { map: { h: { itemtype: 'Computer', id: 1, name: 'x' } } } }).success).toBe(false);
    expect(configSchema.safeParse({ ...base, glpi: { ...base.glpi, recovery_fallback: ['reopen'] } }).success).toBe(false);
  });
});

describe('NameResolver', () => {
  it('turns the names of a draft into ids, and leaves out (and says) what is unknown or ambiguous', async () => {
    const dir = new TableDirectory({ 'ITILCategory:Monitoring > CPU': [12], 'Group:Linux admins': [4, 9], 'User:noc': [31] });
    const { resolver, metrics } = setup(dir);
    const out = await resolver.resolveDraft(draft({ names: { itilcategories_id: 'Monitoring > CPU', groups_id_assign: 'Linux admins', requesttypes_id: 'Nope', users: { observer: ['noc'] } }, users: { observer: [7] } }));
    expect(out.itilcategories_id).toBe(12);
    expect(out.groups_id_assign).toBe(0);
    expect(out.requesttypes_id).toBe(0);
    expect(out.users).toEqual({ observer: [7, 31] });
    expect(out.names).toBeUndefined();
    const counted = (await metrics.registry.getSingleMetric('zgb_glpi_lookups_total')!.get()).values.map((v) => `${v.labels.itemtype}:${v.labels.result}=${v.value}`);
    expect(counted).toEqual(expect.arrayContaining(['ITILCategory:found=1', 'Group:ambiguous=1', 'RequestType:unknown=1', 'User:found=1']));
  });

  it('answers from the cache within the TTL, asks again after it, and keeps a miss for a minute at most', async () => {
    const dir = new TableDirectory({ 'ITILCategory:A': [1] });
    const { resolver, advance } = setup(dir);
    expect(await resolver.resolve('ITILCategory', 'A')).toMatchObject({ kind: 'found', id: 1, source: 'found' });
    expect(await resolver.resolve('ITILCategory', 'a')).toMatchObject({ kind: 'found', id: 1, source: 'cached' });
    expect(dir.asked).toBe(1);
    advance(61_000);
    dir.names['ITILCategory:A'] = [2];
    expect(await resolver.resolve('ITILCategory', 'A')).toMatchObject({ kind: 'found', id: 2, source: 'found' });
    // A miss is kept for a minute (a job's retries, a storm's tickets ask once): a category created in GLPI is found after it.
    expect(await resolver.resolve('ITILCategory', 'B')).toEqual({ kind: 'unknown' });
    dir.names['ITILCategory:B'] = [5];
    const asked = dir.asked;
    expect(await resolver.resolve('ITILCategory', 'B')).toEqual({ kind: 'unknown' });
    expect(dir.asked).toBe(asked);
    advance(NEGATIVE_TTL_MS);
    expect(await resolver.resolve('ITILCategory', 'B')).toMatchObject({ kind: 'found', id: 5 });
  });

  it('keeps the last good resolution when GLPI is unreachable, and makes a name it never resolved wait', async () => {
    const dir = new TableDirectory({ 'ITILCategory:A': [1] });
    const { resolver, advance } = setup(dir);
    const rules = rulesSchema.parse({ defaults: { itilcategory: 'A' } });
    expect(await resolver.warm(rules, 'start')).toEqual({ resolved: 1, problems: 0, unreachable: false });
    dir.down = true;
    expect((await resolver.warm(rules, 'reload')).unreachable).toBe(true);
    advance(120_000);
    expect(await resolver.resolve('ITILCategory', 'A')).toMatchObject({ kind: 'found', id: 1, source: 'stale' });
    await expect(resolver.resolve('ITILCategory', 'never seen')).rejects.toMatchObject({ kind: 'retryable' });
  });

  it('finds the host\'s asset: the map first, then by name, then by IP; none or several: no asset, counted', async () => {
    const dir = new TableDirectory({}, {
      'name:web-01': [{ itemtype: 'Computer', id: 3 }],
      'ip:10.0.0.9': [{ itemtype: 'NetworkEquipment', id: 8 }],
      'name:dup': [{ itemtype: 'Computer', id: 1 }, { itemtype: 'NetworkEquipment', id: 2 }],
    });
    const assets = { enabled: true, itemtypes: ['Computer', 'NetworkEquipment'], by: ['name', 'ip'] as ('name' | 'ip')[], map: { special: { itemtype: 'Printer', id: 44 } } };
    const { resolver, metrics } = setup(dir, { assets });
    expect(await resolver.findAsset({ name: 'web-01', ip: '10.0.0.1' })).toEqual({ itemtype: 'Computer', id: 3 });
    expect(await resolver.findAsset({ name: 'sw-core', ip: '10.0.0.9' })).toEqual({ itemtype: 'NetworkEquipment', id: 8 });
    expect(await resolver.findAsset({ name: 'special' })).toEqual({ itemtype: 'Printer', id: 44 });
    expect(await resolver.findAsset({ name: 'dup' })).toBeUndefined();
    expect(await resolver.findAsset({ name: 'nowhere', ip: '192.0.2.1' })).toBeUndefined();
    const counted = (await metrics.registry.getSingleMetric('zgb_glpi_assets_total')!.get()).values.map((v) => `${v.labels.result}=${v.value}`);
    expect(counted).toEqual(expect.arrayContaining(['name=1', 'ip=1', 'map=1', 'ambiguous=1', 'none=1']));
    const out = await resolver.resolveDraft(draft({ host: { name: 'web-01' } }));
    expect(out.asset).toEqual({ itemtype: 'Computer', id: 3 });
  });

  it('a retried lookup asks GLPI only what it did not answer: one cache entry per itemtype, a miss kept for a minute', async () => {
    class FlakyDirectory extends TableDirectory {
      failOn: string | undefined;
      readonly log: string[] = [];
      override async findAssets(itemtypes: readonly string[], by: 'name' | 'ip', value: string): Promise<AssetRef[]> {
        this.log.push(`${itemtypes.join(',')} ${by}=${value}`);
        if (itemtypes.includes(this.failOn ?? '')) throw new RemoteError('retryable', 'HTTP_500', '500', 500, undefined, { outage: true, mayHaveLanded: false });
        return super.findAssets(itemtypes, by, value);
      }
    }
    const dir = new FlakyDirectory({}, {});
    dir.failOn = 'NetworkEquipment';
    const assets = { enabled: true, itemtypes: ['Computer', 'NetworkEquipment'], by: ['name'] as ('name' | 'ip')[], map: {} };
    const { resolver, advance } = setup(dir, { assets, ttlMs: 3_600_000 });
    await expect(resolver.findAsset({ name: 'db-02' })).rejects.toMatchObject({ code: 'HTTP_500' });
    dir.failOn = undefined;
    expect(await resolver.findAsset({ name: 'db-02' })).toBeUndefined();
    expect(await resolver.findAsset({ name: 'db-02' })).toBeUndefined();
    expect(dir.log).toEqual(['Computer name=db-02', 'NetworkEquipment name=db-02', 'NetworkEquipment name=db-02']);
    dir.assets['name:db-02'] = [{ itemtype: 'Computer', id: 12 }];
    advance(NEGATIVE_TTL_MS);
    expect(await resolver.findAsset({ name: 'db-02' })).toEqual({ itemtype: 'Computer', id: 12 });
  });

  it('an answer GLPI gave but the bridge cannot read costs the asset or the name, not the ticket; GLPI down still holds the create', async () => {
    const unreadable = new RemoteError('retryable', 'BAD_ANSWER', 'GLPI Computer search answer not understood', undefined, undefined, { mayHaveLanded: false });
    let failure: RemoteError = unreadable;
    const dir: GlpiDirectory = {
      findByName: async () => { throw failure; },
      findAssets: async () => { throw failure; },
    };
    const metrics = createMetrics({ processMetrics: false });
    const resolver = new NameResolver(dir, { now: () => 0 }, silent, metrics, () => ({ ttlMs: 1000, assets: { enabled: true, itemtypes: ['Computer'], by: ['name'], map: {} } }));
    const out = await resolver.resolveDraft(draft({ names: { itilcategories_id: 'X' }, host: { name: 'h' } }));
    expect([out.itilcategories_id, out.asset]).toEqual([0, undefined]);
    failure = new RemoteError('retryable', 'HTTP_500', '500', 500, undefined, { outage: true, mayHaveLanded: false });
    await expect(resolver.findAsset({ name: 'h2' })).rejects.toMatchObject({ code: 'HTTP_500' });
  });

  it('an API without lookups: the ticket goes without the item, never fails', async () => {
    const dir: GlpiDirectory = {
      findByName: async () => { throw new RemoteError('permanent', 'GLPI_LOOKUP_UNSUPPORTED', 'not with v2', undefined, undefined, { mayHaveLanded: false }); },
      findAssets: async () => { throw new RemoteError('permanent', 'GLPI_LOOKUP_UNSUPPORTED', 'not with v2', undefined, undefined, { mayHaveLanded: false }); },
    };
    const metrics = createMetrics({ processMetrics: false });
    const resolver = new NameResolver(dir, { now: () => 0 }, silent, metrics, () => ({ ttlMs: 1000, assets: { enabled: true, itemtypes: ['Computer'], by: ['name'], map: {} } }));
    const out = await resolver.resolveDraft(draft({ names: { itilcategories_id: 'X' }, host: { name: 'h' } }));
    expect(out.itilcategories_id).toBe(0);
    expect(out.asset).toBeUndefined();
  });
});
