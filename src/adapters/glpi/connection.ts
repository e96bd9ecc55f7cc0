import type { GlpiDirectory, TicketDesk } from '../../core/ports.js';

// What the composition root, readiness and check-config need from a GLPI adapter, whichever API it
// speaks: the legacy REST API (client.ts, glpi.api: v1) or the high-level API (v2/, glpi.api: v2).

/** none: not logged in yet; open: a session (v1) or access token (v2) is held; login_failed: GLPI refused the credentials. */
export type SessionState = 'none' | 'open' | 'opening' | 'login_failed';

export interface GlpiConnection extends TicketDesk, GlpiDirectory {
  readonly sessionState: SessionState;
  /** GLPI's own words for the last refused login (what /readyz and check-config show). */
  readonly lastLoginError: string | undefined;
  /** Log in now (at start and in check-config --online); a refusal throws a RemoteError. */
  open(): Promise<void>;
  /** Log out if the API has a way to, then free sockets; never throws. */
  close(): Promise<void>;
  /** GLPI's major version (10, 11…), asked once; undefined when GLPI did not say. */
  glpiMajor(): Promise<number | undefined>;
  /** Whether a referenced item exists and the bridge's user can read it (check-config --online). Itemtypes as in the legacy API: ITILCategory, Group, Entity, RequestType, SolutionType. */
  itemStatus(itemtype: string, id: number): Promise<'exists' | 'missing' | 'forbidden'>;
}
