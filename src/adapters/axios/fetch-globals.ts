// Node's fetch classes, hidden while axios loads (see index.ts).

/**
 * The globals whose first read loads Node's fetch implementation (undici, about 2 MB of heap in each thread
 * that reads one): Node defines them as lazy getters. axios reads FormData, Request and Response once, as it
 * loads, to pick its fetch adapter; the bridge uses its http adapter (axios' default in Node) and never fetch.
 */
export const FETCH_CLASSES = ['FormData', 'Headers', 'Request', 'Response'] as const;

/** The globals hidden, with how they were defined (only configurable ones are touched). */
let hidden: [string, PropertyDescriptor][] | undefined;

/** Make the fetch classes read as undefined, without loading them. */
export function hideFetchClasses(): void {
  if (hidden) return;
  hidden = FETCH_CLASSES.flatMap((name) => {
    const was = Object.getOwnPropertyDescriptor(globalThis, name);
    return was?.configurable ? [[name, was] as [string, PropertyDescriptor]] : [];
  });
  for (const [name] of hidden) Object.defineProperty(globalThis, name, { value: undefined, configurable: true, writable: true });
}

/** Put back the globals exactly as they were (still unloaded getters). */
export function restoreFetchClasses(): void {
  for (const [name, was] of hidden ?? []) Object.defineProperty(globalThis, name, was);
  hidden = undefined;
}
