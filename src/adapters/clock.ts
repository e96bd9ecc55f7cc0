import type { Clock } from '../core/ports.js';

export type { Clock };

export const systemClock: Clock = { now: () => Date.now() };
