import type { Db } from '../../ports/db.js';
import type { VerifyResult } from '../audit/index.js';
import type { Principal } from '../auth/index.js';
import type { Backlog } from '../notifications/index.js';
import type { RefundView } from '../payments/index.js';
import type { ReferralsModule } from '../referrals/index.js';
import type { InboxStatus } from '../stripe-events/index.js';

/**
 * The other modules' functions the dashboard's pages and forms call: the same ones their REST routes call,
 * handed in by `src/modules.ts`.
 */
export interface DashboardServices {
  db: Db;
  principalOfKey(keyId: string): Promise<Principal | null>;
  authenticate(key: string): Promise<Principal | null>;
  referrals: Pick<
    ReferralsModule,
    | 'createAffiliate'
    | 'addCode'
    | 'getAffiliate'
    | 'listAffiliates'
    | 'listCommissions'
    | 'reviewCommission'
    | 'createPayout'
    | 'clickCount'
  >;
  createRefund(
    input: { orderId: string; amount?: number | undefined; reason?: string | undefined },
    request: { requestId: string | null },
  ): Promise<RefundView>;
  listEvents(filter: { status?: InboxStatus; limit?: number }): Promise<{
    data: Array<{ id: string; type: string; status: InboxStatus; attempts: number; reason?: string | null }>;
    has_more: boolean;
  }>;
  replayEvent(eventId: string): Promise<{ event_id: string; status: InboxStatus } | null>;
  outboxBacklog(): Promise<Backlog>;
  verifyAudit(): Promise<VerifyResult>;
}
