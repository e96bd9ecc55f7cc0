// The migrations of the two files, in order. Forward only: a migration that shipped is never edited (a test
// pins each one's SQL); a change of schema is a new file with the next number. Its number is the file's
// schema version (PRAGMA user_version) once it has run.

import type { Migration } from '../database.js';
import { inbox001Initial } from './inbox-001-initial.js';
import { state001Initial } from './state-001-initial.js';
import { state002Inbox } from './state-002-inbox.js';
import { state003EventIndex } from './state-003-event-index.js';
import { state004IncidentKey } from './state-004-incident-key.js';
import { state005Cycle } from './state-005-cycle.js';
import { state006DecisionLog } from './state-006-decision-log.js';

/** The state file (`bridge.db`). */
export const STATE_MIGRATIONS: readonly Migration[] = [state001Initial, state002Inbox, state003EventIndex, state004IncidentKey, state005Cycle, state006DecisionLog];

/** The inbox file (`bridge.inbox.db`). */
export const INBOX_MIGRATIONS: readonly Migration[] = [inbox001Initial];
