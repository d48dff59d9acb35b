import closeWithGrace from 'close-with-grace';
import { Command, Option } from 'commander';
import { buildApp } from './app.js';
import type { Infra } from './compose.js';
import { composeInfra } from './compose.js';
import { loadConfig } from './config.js';
import { migrate } from './db/migrate.js';
import { startWorkers } from './jobs/index.js';
import { createKey, ROLES, type Role } from './modules/auth/index.js';
import { getOrder } from './modules/orders/index.js';
import { prepareDemo, type SeedDeps } from './modules/storefront/index.js';
import {
  createModules,
  isDemo,
  type Modules,
  moduleWorkers,
  type OpenModules,
  registerModuleCommands,
} from './modules.js';
import { redactUrlCredentials } from './shared/redact.js';

/** Every command fails the same way: one line naming the reason, exit code 1. */
function fail(err: unknown): never {
  const reason = redactUrlCredentials(err instanceof Error ? err.message : String(err));
  process.stderr.write(`payments-service: ${reason}\n`);
  process.exit(1);
}

const program = new Command('payments-service')
  .description('Stripe Checkout, exactly-once webhooks, order state diffs and referrals')
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode));

program
  .command('serve')
  .description('HTTP API, webhook endpoint and background workers')
  .action(async () => {
    const config = loadConfig();
    const infra = await composeInfra(config, { migrate: true, startEmulator: true });
    const logger = infra.log;
    // The demo seed moves the referral programme's clock back while it makes an order, so its weeks of
    // commissions fall in the past; outside demo mode the clock is the real one.
    let offsetMs = 0;
    const demo = isDemo(config) && infra.emulator !== undefined;
    const modules = createModules(infra, demo ? { now: () => new Date(Date.now() + offsetMs) } : {});
    const app = await buildApp({ infra, modules, logger });
    const workers = startWorkers(moduleWorkers(modules), logger);
    closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
      if (err) logger.error({ err }, 'shutting down after an error');
      else logger.info({ signal }, 'shutting down');
      await app.close();
      await workers.stop();
      await infra.close();
    });
    const prepared = demo
      ? await prepareDemo(
          demoSeed(infra, modules, (ms) => {
            offsetMs = ms;
          }),
        )
      : null;
    await app.listen({ port: config.port, host: config.host });
    const lines = [
      `payments-service listening on ${config.publicUrl}`,
      `  API docs:        ${config.publicUrl}/docs`,
      `  dashboard:       ${config.publicUrl}/dashboard`,
    ];
    if (prepared) {
      lines.splice(1, 0, `  storefront demo: ${config.publicUrl}/`);
      lines.push(
        `  Stripe emulator: ${infra.emulator!.url}`,
        `  demo admin key:  ${prepared.keys.admin}`,
        `  demo affiliate key (Ada Demo): ${prepared.keys.affiliate}`,
      );
    } else if (infra.emulator) {
      lines.push(`  Stripe emulator: ${infra.emulator.url}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    if (prepared?.fill) {
      prepared.fill().then(
        () => logger.info('demo data seeded'),
        (err) => logger.error({ err }, 'demo data could not be seeded'),
      );
    }
  });

/** What the demo seed calls: the modules' own functions, and the emulator's test helpers over HTTP. */
function demoSeed(infra: Infra, modules: Modules, shiftClock: (ms: number) => void): SeedDeps {
  return {
    db: infra.db,
    publicUrl: infra.config.publicUrl,
    emulatorUrl: infra.emulator!.url,
    referrals: modules.referrals,
    createSession: modules.checkout.createSession,
    createRefund: modules.payments.createRefund,
    orderStatus: async (id) => (await getOrder(infra.db, id))?.status ?? null,
    shiftClock,
  };
}

program
  .command('worker')
  .description(
    'background workers only: inbox retries, outbox relay, approvals, checkout completer, reconciliation',
  )
  .action(async () => {
    const infra = await composeInfra(loadConfig(), { migrate: true });
    const logger = infra.log;
    const workers = startWorkers(moduleWorkers(createModules(infra)), logger);
    logger.info('workers running');
    closeWithGrace({ delay: 10_000 }, async () => {
      await workers.stop();
      await infra.close();
    });
  });

program
  .command('migrate')
  .description('apply the SQL migrations to DATABASE_URL or the PGlite data directory')
  .action(async () => {
    const infra = await composeInfra(loadConfig());
    try {
      const applied = await migrate(infra.db);
      process.stdout.write(
        applied.length ? `applied migrations ${applied.join(', ')}\n` : 'nothing to apply\n',
      );
    } finally {
      await infra.close();
    }
  });

program
  .command('keys')
  .description('API keys')
  .command('create')
  .description('create an API key and print it once')
  .addOption(new Option('--role <role>', 'the key role').choices(ROLES).makeOptionMandatory())
  .option('--affiliate <aff_id>', 'the affiliate an affiliate key is bound to')
  .option('--name <label>', 'a label to recognise the key by', '')
  .option('--json', 'print {"id","key","role"} on one line')
  .action(async (opts: { role: Role; affiliate?: string; name: string; json?: boolean }) => {
    if (opts.role === 'affiliate' && !opts.affiliate) fail('--role affiliate needs --affiliate <aff_id>');
    if (opts.role !== 'affiliate' && opts.affiliate) fail('--affiliate goes only with --role affiliate');
    const infra = await composeInfra(loadConfig(), { migrate: true });
    try {
      const created = await createKey(infra.db, {
        role: opts.role,
        affiliateId: opts.affiliate ?? null,
        name: opts.name,
      });
      process.stdout.write(
        opts.json
          ? `${JSON.stringify({ id: created.id, key: created.key, role: created.role })}\n`
          : `${created.role} key ${created.id}: ${created.key}\n(shown once; only its hash is stored)\n`,
      );
    } finally {
      await infra.close();
    }
  });

program
  .command('stripe-emulator')
  .description('run the Stripe emulator alone')
  .option('--port <port>', 'port to listen on', '12111')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--webhook-url <url>', 'register a webhook endpoint that receives every event')
  .option('--webhook-secret <whsec>', 'the signing secret for that endpoint (generated when absent)')
  .action(async (opts: { port: string; host: string; webhookUrl?: string; webhookSecret?: string }) => {
    const port = Number(opts.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port ${opts.port} is not a port number`);
    const { startStripeEmulator } = await import('../stripe-emulator/index.js');
    const emulator = await startStripeEmulator({
      port,
      host: opts.host,
      ...(opts.webhookUrl ? { webhookUrl: opts.webhookUrl } : {}),
      ...(opts.webhookSecret ? { webhookSecret: opts.webhookSecret } : {}),
    });
    process.stdout.write(`Stripe emulator listening on ${emulator.url}\n`);
    if (emulator.webhookSecret)
      process.stdout.write(`  delivering to ${opts.webhookUrl} (secret ${emulator.webhookSecret})\n`);
    closeWithGrace({ delay: 5_000 }, () => emulator.close());
  });

/** Opens the dependencies for one command of a module, runs it, and closes them again. */
const openModules: OpenModules = async (use, opts = {}) => {
  const config = loadConfig();
  if (opts.needsStripe && config.embeddedEmulator) {
    throw new Error(
      'this needs STRIPE_SECRET_KEY or STRIPE_API_BASE (the embedded emulator lives only inside serve)',
    );
  }
  const infra = await composeInfra(config, { migrate: true });
  try {
    return await use(createModules(infra));
  } finally {
    await infra.close();
  }
};

registerModuleCommands(program, openModules);

program.parseAsync(process.argv).catch(fail);
