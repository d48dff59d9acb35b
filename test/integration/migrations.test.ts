import { describe, expect, it } from 'vitest';
import { loadMigrations, migrate } from '../../src/db/migrate.js';
import { BACKENDS, openTestDb } from '../helpers/db.js';

describe.each(BACKENDS)('migrations over existing data on %s', (backend) => {
  it('moves a Stripe call and its session into the reshaped tables (0005) without losing either', async () => {
    const testDb = await openTestDb(backend, { migrate: false });
    try {
      await migrate(
        testDb.db,
        loadMigrations().filter((m) => m.version < 5),
      );
      // A checkout made before the reshaping: its call (tried twice by the completer) and its session.
      await testDb.db.exec(`
        insert into orders (id, status, currency, amount_total, line_items)
        values ('ord_old', 'awaiting_payment', 'usd', 5000, '[]');
        insert into stripe_attempts (id, kind, order_id, request_id, params, status, stripe_object_id, tries,
                                     next_attempt_at)
        values ('att_old', 'checkout_session', 'ord_old', 'idk_old',
                '{"order": {"currency": "usd", "amount_total": 5000, "customer_email": "b@example.com"}}',
                'done', 'cs_old', 2, now());
        insert into checkout_sessions (id, order_id, attempt_id, amount_total, currency, expires_at)
        values ('cs_old', 'ord_old', 'att_old', 5000, 'usd', now());`);
      expect(
        await migrate(
          testDb.db,
          loadMigrations().filter((m) => m.version === 5),
        ),
      ).toEqual([5]);
      const { rows } = await testDb.db.query(
        `select s.call_id, s.order_fields, c.attempts, c.status
           from checkout_sessions s join stripe_calls c on c.id = s.call_id`,
      );
      expect(rows).toEqual([
        {
          call_id: 'att_old',
          order_fields: { currency: 'usd', amount_total: 5000, customer_email: 'b@example.com' },
          // Two completer tries, and now the request's own try counted too.
          attempts: 3,
          status: 'done',
        },
      ]);
    } finally {
      await testDb.close();
    }
  });
});
