import { expect } from 'vitest';
import { randomBase62 } from '../../src/shared/ids.js';
import type { TestContext } from './app.js';

/**
 * An affiliate made through the API, with its codes: `{id, key}` (the affiliate's own bearer header). Terms
 * default to 10%.
 */
export async function createAffiliate(
  ctx: TestContext,
  admin: string,
  codes: string[],
  commission: Record<string, unknown> = { type: 'percent', basis_points: 1000 },
): Promise<{ id: string; key: string }> {
  const headers = { authorization: admin };
  const res = await ctx.app.inject({
    method: 'POST',
    url: '/v1/affiliates',
    headers,
    payload: { name: 'Alice', email: `alice.${randomBase62(6)}@example.com`, commission },
  });
  expect(res.statusCode, res.body).toBe(201);
  const created = res.json() as { id: string; api_key: string };
  for (const code of codes) {
    const added = await ctx.app.inject({
      method: 'POST',
      url: `/v1/affiliates/${created.id}/codes`,
      headers,
      payload: { code },
    });
    expect(added.statusCode, added.body).toBe(201);
  }
  return { id: created.id, key: `Bearer ${created.api_key}` };
}
