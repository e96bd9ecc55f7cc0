// One mapping for every store of the rows behind IncidentState.announcedOnOpenEvents: (event id, announced
// entry `<event id>:<key>`) in order → the keys per event.

export interface AnnouncedRow {
  readonly event_id: string;
  readonly entry: string;
}

/** The rows' keys per event, in the rows' order (each entry's `<event id>:` cut off). */
export function announcedByEvent(rows: Iterable<AnnouncedRow>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of rows) {
    const keys = out.get(r.event_id) ?? [];
    keys.push(r.entry.slice(r.event_id.length + 1));
    out.set(r.event_id, keys);
  }
  return out;
}

/** Whether an announced entry is a key starting with `prefix` on `eventId` (what the SQL of each store selects). */
export function announcedOn(eventId: string, entry: string, prefix: string): boolean {
  return entry.startsWith(`${eventId}:${prefix}`);
}
