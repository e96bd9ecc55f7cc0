/**
 * What the fake GLPI knows besides tickets: ITIL categories, entities and groups (tree dropdowns with a
 * complete name), request types, users, and assets (Computer, NetworkEquipment, …) with their IP addresses,
 * for the bridge's lookups by name (issue 14 items 2 and 3).
 *
 * Sources (glpi-project/glpi):
 * - `CommonTreeDropdown::prepareInputForAdd()/getCompleteNameFromParents()`: a tree dropdown's
 *   `completename` is its ancestors' names and its own joined by " > " (ITILCategory, Group, Entity:
 *   "Root entity > Paris").
 * - `API::getItems()` with `searchText[field]=…`: each filter is `Search::makeTextSearch()`, a SQL LIKE
 *   '%…%' unless anchored with `^` / `$`, compared under the database's case-insensitive collation.
 * - `NetworkPort::rawSearchOptionsToAdd()` @ 0042059c82075d3223c145cb3609a83019fc0cd2: search option 126
 *   "IP" is `glpi_ipaddresses.name` joined `mainitemtype_mainitem` (the address's main item is the asset)
 *   with `is_deleted = 0`, multi-valued (forcegroupby); option 1 of an asset is its `name`, 2 its id.
 * - `Ticket::post_addItem()`: an `items_id` input `{itemtype: [ids]}` adds one Item_Ticket per id; an
 *   id that does not exist adds nothing and the ticket stays created. Actor inputs `_users_id_assign`,
 *   `_users_id_observer`, `_users_id_requester` (an id or a list) add Ticket_User rows the same way.
 */
import { encodeHtml } from './sanitizer.js';
import { likeMatch } from './search.js';

export interface FakeTreeItem {
  id: number;
  name: string;
  /** Parent id (0: at the top; for entities, the root entity 0 is the top). */
  parent?: number;
}

export interface FakeDirectoryUser {
  id: number;
  /** Login. */
  name: string;
  realname?: string;
  firstname?: string;
}

export interface FakeAsset {
  itemtype: string;
  id: number;
  name: string;
  ips?: string[];
  entities_id?: number;
  is_deleted?: number;
}

export interface FakeDirectorySeed {
  categories?: FakeTreeItem[];
  groups?: FakeTreeItem[];
  /** Entities besides the root entity (id 0, "Root entity"). */
  entities?: FakeTreeItem[];
  requestTypes?: { id: number; name: string }[];
  users?: FakeDirectoryUser[];
  assets?: FakeAsset[];
}

/** Asset itemtypes the fake serves (search and getItem). */
export const ASSET_TYPES = ['Computer', 'NetworkEquipment', 'Printer', 'Phone', 'Peripheral'] as const;

function completeName(items: readonly FakeTreeItem[], item: FakeTreeItem, root?: string): string {
  const names: string[] = [item.name];
  let parent = item.parent ?? 0;
  for (let guard = 0; parent > 0 && guard < 64; guard++) {
    const p = items.find((i) => i.id === parent);
    if (!p) break;
    names.unshift(p.name);
    parent = p.parent ?? 0;
  }
  if (root !== undefined) names.unshift(root);
  return names.join(' > ');
}

export class FakeDirectory {
  readonly categories: FakeTreeItem[];
  readonly groups: FakeTreeItem[];
  readonly entities: FakeTreeItem[];
  readonly requestTypes: { id: number; name: string }[];
  readonly users: FakeDirectoryUser[];
  readonly assets: FakeAsset[];

  /**
   * GLPI 10 stores input HTML-encoded (Sanitizer: `&` `<` `>` → `&#38;` `&#60;` `&#62;`), names and
   * complete names alike, and getItems / search output is that stored text; GLPI 11 stores text as typed.
   * Whether GLPI 10 encodes the " > " it puts between a tree dropdown's levels is not confirmed: the fake
   * encodes the whole complete name (the bridge compares decoded complete names, so either way works).
   */
  readonly #encode: (v: string) => string;

  constructor(seed: FakeDirectorySeed = {}, encode = false) {
    this.#encode = encode ? encodeHtml : (v) => v;
    this.categories = [...(seed.categories ?? [])];
    this.groups = [...(seed.groups ?? [])];
    this.entities = [...(seed.entities ?? [])];
    // install/empty_data.php: request types 1 Helpdesk, 2 E-Mail, 3 Phone, 4 Direct, 5 Written, 6 Other.
    this.requestTypes = [...(seed.requestTypes ?? [
      { id: 1, name: 'Helpdesk' }, { id: 2, name: 'E-Mail' }, { id: 3, name: 'Phone' },
      { id: 4, name: 'Direct' }, { id: 5, name: 'Written' }, { id: 6, name: 'Other' },
    ])];
    this.users = [...(seed.users ?? [])];
    this.assets = (seed.assets ?? []).map((a) => ({ ...a }));
  }

  /** Rows of a dropdown or User table as getItems returns them (the columns the bridge reads). */
  rows(itemtype: string): Record<string, unknown>[] | undefined {
    switch (itemtype) {
      case 'ITILCategory':
        // glpi_itilcategories columns of GLPI 10.0 (install/mysql/glpi-empty.sql @ 0041a2e0b7624e723d3488ec51988c3203ead0f8).
        return this.categories.map((c) => ({
          id: c.id, entities_id: 0, is_recursive: 1, itilcategories_id: c.parent ?? 0, name: this.#encode(c.name), completename: this.#encode(completeName(this.categories, c)),
          comment: null, level: completeName(this.categories, c).split(' > ').length, knowbaseitemcategories_id: 0, users_id: 0, groups_id: 0, code: null,
          ancestors_cache: null, sons_cache: null, is_helpdeskvisible: 1, tickettemplates_id_incident: 0, tickettemplates_id_demand: 0,
          changetemplates_id: 0, problemtemplates_id: 0, is_incident: 1, is_request: 1, is_problem: 1, is_change: 1,
          date_mod: '2025-03-04 10:15:02', date_creation: '2025-03-04 10:15:02',
        }));
      case 'Group':
        return this.groups.map((g) => ({ id: g.id, name: this.#encode(g.name), completename: this.#encode(completeName(this.groups, g)), groups_id: g.parent ?? 0, entities_id: 0, is_recursive: 1 }));
      case 'Entity':
        return [
          { id: 0, name: 'Root entity', completename: 'Root entity', entities_id: -1 },
          ...this.entities.map((e) => ({ id: e.id, name: this.#encode(e.name), completename: this.#encode(completeName(this.entities, e, 'Root entity')), entities_id: e.parent ?? 0 })),
        ];
      case 'RequestType':
        return this.requestTypes.map((r) => ({ id: r.id, name: this.#encode(r.name) }));
      case 'User':
        return this.users.map((u) => ({ id: u.id, name: this.#encode(u.name), realname: u.realname !== undefined ? this.#encode(u.realname) : null, firstname: u.firstname !== undefined ? this.#encode(u.firstname) : null, is_active: 1 }));
      default:
        return undefined;
    }
  }

  /** One row, or undefined. */
  row(itemtype: string, id: number): Record<string, unknown> | undefined {
    return this.rows(itemtype)?.find((r) => r.id === id);
  }

  has(itemtype: string): boolean {
    const list = { ITILCategory: this.categories, Group: this.groups, Entity: this.entities, User: this.users }[itemtype];
    return list !== undefined && list.length > 0;
  }

  entityIds(): number[] {
    return this.entities.map((e) => e.id);
  }

  /** `searchText[field]=value` filters (AND), as API::getItems() applies them. */
  static filter(rows: Record<string, unknown>[], searchText: Readonly<Record<string, string>>): Record<string, unknown>[] | string {
    const fields = Object.keys(searchText);
    for (const f of fields) if (rows.length > 0 && !(f in rows[0]!) && f !== 'id') return f;
    return rows.filter((r) => fields.every((f) => searchText[f] === '' || (r[f] !== null && r[f] !== undefined && likeMatch(String(r[f]), searchText[f]!))));
  }

  /** An asset's name as stored (encoded by GLPI 10). */
  storedName(a: FakeAsset): string {
    return this.#encode(a.name);
  }

  asset(itemtype: string, id: number): FakeAsset | undefined {
    return this.assets.find((a) => a.itemtype === itemtype && a.id === id);
  }
}
