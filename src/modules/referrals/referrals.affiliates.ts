import { createHmac } from 'node:crypto';
import type { Db, Queryable } from '../../ports/db.js';
import { AppError, isUniqueViolation, notFound } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { createKey } from '../auth/index.js';
import type { ReferralsContext } from './referrals.context.js';
import { normalizeEmail } from './referrals.fraud.js';
import * as sql from './referrals.sql.js';
import type { Terms } from './referrals.terms.js';

/** Affiliates, their referral codes, and the clicks on their `/r/:code` links. */

export interface AffiliateInput {
  name: string;
  email: string;
  commission: Terms;
}

export interface CodeView {
  code: string;
  affiliate_id: string;
  active: boolean;
  created_at: Date;
}

const affiliateStream = (affiliateId: string) => `affiliate:${affiliateId}`;

/** The affiliate with its terms and a new affiliate API key (shown once), audited on its own stream. */
export async function createAffiliate(ctx: ReferralsContext, input: AffiliateInput, actor: string) {
  return ctx.db.tx(async (q) => {
    const id = newId('aff');
    const row = (
      await q.query<sql.AffiliateRow>(
        sql.insertAffiliate({
          id,
          name: input.name,
          email: input.email,
          emailKey: normalizeEmail(input.email),
          terms: input.commission,
        }),
      )
    ).rows[0]!;
    const key = await createKey(q, { role: 'affiliate', affiliateId: id, name: `affiliate ${id}` });
    await ctx.audit.append(q, {
      stream: affiliateStream(id),
      actor,
      action: 'affiliate.created',
      entity_type: 'affiliate',
      entity_id: id,
      data: { name: input.name, email: input.email, terms: input.commission },
    });
    return { ...toAffiliateView(row), api_key: key.key };
  });
}

export const toAffiliateView = (a: sql.AffiliateRow) => ({
  id: a.id,
  name: a.name,
  email: a.email,
  commission: a.terms,
  created_at: a.created_at,
});

export async function getAffiliate(q: Queryable, id: string) {
  const row = (await q.query<sql.AffiliateRow>(sql.selectAffiliate(id))).rows[0];
  if (!row) throw notFound(`affiliate ${id}`);
  const codes = (await q.query<CodeView>(sql.codesOf(id))).rows;
  return { ...toAffiliateView(row), codes };
}

export async function listAffiliates(q: Queryable, page: { limit: number; startingAfter: string | null }) {
  const rows = (await q.query<sql.AffiliateRow>(sql.listAffiliates(page.limit + 1, page.startingAfter))).rows;
  return { data: rows.slice(0, page.limit).map(toAffiliateView), has_more: rows.length > page.limit };
}

const codeTaken = (code: string) =>
  new AppError(409, 'code_taken', `the referral code ${code} is taken (codes are unique ignoring case)`, {
    details: { code },
  });

/** A new code for the affiliate; 409 `code_taken` when it exists in any case. */
export async function addCode(ctx: ReferralsContext, affiliateId: string, code: string, actor: string) {
  return ctx.db.tx(async (q) => {
    if (!(await q.query(sql.selectAffiliate(affiliateId))).rows[0])
      throw notFound(`affiliate ${affiliateId}`);
    let row: CodeView | undefined;
    try {
      row = (await q.query<CodeView>(sql.insertCode(code, affiliateId))).rows[0];
    } catch (err) {
      // The case-insensitive index refuses `alice10` beside `ALICE10`.
      if (isUniqueViolation(err)) throw codeTaken(code);
      throw err;
    }
    if (!row) throw codeTaken(code);
    await auditCode(ctx, q, row, 'code.created', actor);
    return row;
  });
}

/** Turns a code off (a checkout naming it is then refused) or on again. */
export async function setCodeActive(
  ctx: ReferralsContext,
  affiliateId: string,
  code: string,
  active: boolean,
  actor: string,
) {
  return ctx.db.tx(async (q) => {
    const row = (await q.query<CodeView>(sql.setCodeActive(code, affiliateId, active))).rows[0];
    if (!row) throw notFound(`code ${code} of affiliate ${affiliateId}`);
    await auditCode(ctx, q, row, active ? 'code.activated' : 'code.deactivated', actor);
    return row;
  });
}

function auditCode(ctx: ReferralsContext, q: Queryable, row: CodeView, action: string, actor: string) {
  return ctx.audit.append(q, {
    stream: affiliateStream(row.affiliate_id),
    actor,
    action,
    entity_type: 'referral_code',
    entity_id: row.code,
    data: { code: row.code, active: row.active },
  });
}

/** The affiliate an active code names, with the code as registered; null for an unknown or inactive code. */
export async function resolveCode(
  q: Queryable,
  code: string,
): Promise<{ code: string; affiliate_id: string } | null> {
  return (await q.query<{ code: string; affiliate_id: string }>(sql.selectActiveCode(code))).rows[0] ?? null;
}

/** An IP as the programme keeps it: a keyed hash, comparable with itself, useless without the salt. */
export const hashIp = (salt: string, ip: string) => createHmac('sha256', salt).update(ip).digest('hex');

/** Records a visit through `/r/:code`; null when the code is unknown or inactive (nothing is recorded). */
export async function recordClick(
  ctx: ReferralsContext,
  db: Db,
  visit: { code: string; ip: string | null; userAgent: string | null; landing: Record<string, string> },
): Promise<{ code: string; affiliate_id: string } | null> {
  const found = await resolveCode(db, visit.code);
  if (!found) return null;
  await db.query(
    sql.insertClick({
      code: found.code,
      affiliateId: found.affiliate_id,
      ipHash: visit.ip ? hashIp(ctx.ipSalt, visit.ip) : null,
      userAgent: visit.userAgent?.slice(0, 512) ?? null,
      landing: visit.landing,
      at: ctx.now(),
    }),
  );
  return found;
}

export { affiliateStream };
