import { compilePattern, isMatcher } from '../core/rules.js';
import type { Config } from './schema.js';
import { Secret } from './secret.js';

/**
 * A loaded configuration in a form that crosses to a worker thread
 * (structured clone keeps plain data but not classes: Secret's private field,
 * a compiled pattern's methods). Secrets travel as { $secret: value } inside
 * the process only; rule patterns as { $pattern: text }, compiled again.
 */
export type TransferableConfig = { readonly $transfer: unknown };

function encode(v: unknown): unknown {
  if (v instanceof Secret) return { $secret: v.reveal() };
  if (isMatcher(v)) return { $pattern: v.pattern };
  if (Array.isArray(v)) return v.map(encode);
  if (v !== null && typeof v === 'object' && !(v instanceof RegExp)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encode(x)]));
  }
  return v;
}

function decode(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decode);
  if (v !== null && typeof v === 'object' && !(v instanceof RegExp)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === '$secret' && typeof o.$secret === 'string') return new Secret(o.$secret);
    if (keys.length === 1 && keys[0] === '$pattern' && typeof o.$pattern === 'string') return compilePattern(o.$pattern);
    return Object.fromEntries(keys.map((k) => [k, decode(o[k])]));
  }
  return v;
}

export function toTransferable(config: Config): TransferableConfig {
  return { $transfer: encode(config) };
}

/** The configuration toTransferable() sent; it was validated before it was sent. */
export function fromTransferable(sent: TransferableConfig): Config {
  return decode(sent.$transfer) as Config;
}
