// Node's fetch classes, hidden while axios loads (see index.ts).

/**
 * The globals whose first read loads Node's fetch implementation (undici, about 2 MB of heap in each thread
 * that reads one): Node defines them as lazy getters. axios reads FormData, Request and Response once, as it
 * loads, to pick its fetch adapter; the bridge uses its http adapter (axios' default in Node) and never fetch.
 */
export const FETCH_CLASSES = ['FormData', 'Headers', 'Request', 'Response'] as const;

let hidden: [string, PropertyDescriptor | undefined][] | undefined;

/** Make the fetch classes read as undefined, without loading them. */
export function hideFetchClasses(): void {
  if (hidden) return;
  hidden = FETCH_CLASSES.map((name) => [name, Object.getOwnPropertyDescriptor(globalThis, name)]);
  for (const [name, was] of hidden) if (was?.configurable) Object.defineProperty(globalThis, name, { value: undefined, configurable: true, writable: true });
}

/** Put back the globals exactly as they were (still unloaded getters). */
export function restoreFetchClasses(): void {
  if (!hidden) return;
  for (const [name, was] of hidden) {
    if (was?.configurable) Object.defineProperty(globalThis, name, was);
    else if (!was) delete (globalThis as Record<string, unknown>)[name];
  }
  hidden = undefined;
}
