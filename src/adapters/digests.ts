import { createHash, createHmac } from 'node:crypto';
import type { Digests } from '../core/ports.js';

/** SHA-256 and HMAC-SHA-256 from Node's crypto (the core asks for them through the Digests port). */
export const nodeDigests: Digests = {
  sha256Hex: (text) => createHash('sha256').update(text).digest('hex'),
  hmacSha256Hex: (key, text) => createHmac('sha256', key).update(text).digest('hex'),
};
