// The poll cursor's former home: it is sqlite/poll-cursor.ts (IntakeStore.pollMemory() opens it on the intake's connection).

export { PollCursor, type PollCursorHost } from './sqlite/index.js';
export type { BaselineMode, CursorState } from './sqlite/poll-cursor.js';
