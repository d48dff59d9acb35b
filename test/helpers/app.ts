import type { App, RoutePlugin } from '../../src/app.js';
import { buildApp } from '../../src/app.js';
import { composeInfra, type Infra } from '../../src/compose.js';
import { loadConfig } from '../../src/config.js';
import { createKey, type Role } from '../../src/modules/auth/index.js';
import { createModules, type ModuleOptions, type Modules } from '../../src/modules.js';
import type { Db } from '../../src/ports/db.js';
import { freePort } from './cli.js';
import { type Backend, openTestDb, type TestDb } from './db.js';
import { TEST_REDIS_URL } from './services.js';

export interface TestContext {
  backend: Backend;
  testDb: TestDb;
  infra: Infra;
  modules: Modules;
  app: App;
  /** `http://127.0.0.1:<port>` when listening. */
  url: string;
  /** A fresh key of `role`, as the Authorization header value. */
  bearer(role: Role, affiliateId?: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * The service as a test sees it: its own database (PGlite, or a schema on PostgreSQL with Redis beside it),
 * the embedded Stripe emulator on a free port, and the app ready for `app.inject`.
 */
export async function createTestContext(
  backend: Backend,
  opts: {
    env?: Record<string, string>;
    extraRoutes?: RoutePlugin[];
    /** Start the embedded Stripe emulator (its webhooks go to this app's real port, so `listen` too). */
    emulator?: boolean;
    /** Listen on a real port (`ctx.url`) as well as answering `app.inject`. */
    listen?: boolean;
    modules?: ModuleOptions;
    /** Wraps the test database as the service sees it (to count its statements, say). */
    wrapDb?: (db: Db) => Db;
  } = {},
): Promise<TestContext> {
  const testDb = await openTestDb(backend);
  const port = opts.listen || opts.emulator ? await freePort() : 0;
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    STRIPE_EMULATOR_PORT: '0',
    PORT: String(port),
    ...(backend === 'postgres' ? { REDIS_URL: TEST_REDIS_URL } : {}),
    ...opts.env,
  });
  const db = opts.wrapDb ? opts.wrapDb(testDb.db) : testDb.db;
  const infra = await composeInfra(config, { db, startEmulator: opts.emulator ?? false });
  const modules = createModules(infra, opts.modules);
  const app = await buildApp({ infra, modules, logger: false, extraRoutes: opts.extraRoutes ?? [] });
  if (port) await app.listen({ port, host: '127.0.0.1' });
  else await app.ready();
  return {
    backend,
    testDb,
    infra,
    modules,
    app,
    url: config.publicUrl,
    async bearer(role, affiliateId) {
      const { key } = await createKey(testDb.db, { role, affiliateId: affiliateId ?? null });
      return `Bearer ${key}`;
    },
    async close() {
      await app.close();
      await infra.close();
      await testDb.close();
    },
  };
}
