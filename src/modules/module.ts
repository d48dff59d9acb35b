import type { FastifyInstance } from 'fastify';
import type { Worker } from '../jobs/index.js';

/**
 * What a module hands the composition root (`src/modules.ts`), which takes routes, workers and hooks from the
 * one list of modules: adding a module means adding it to that list, and nothing else outside its folder.
 * Each module builds this from only the dependencies it needs; none imports the composition root.
 */
export interface ServiceModule {
  name: string;
  /**
   * Hooks every route passes through (authentication, Idempotency-Key), wrapped with fastify-plugin so they
   * reach the whole app. Registered before any module's routes.
   */
  plugin?: (app: FastifyInstance) => Promise<void>;
  /** The module's routes, registered as an encapsulated plugin. */
  routes?: (app: FastifyInstance) => Promise<void>;
  /**
   * The background work `serve` and `worker` run: queue workers and periodic jobs. A function, since only
   * those commands build them (a relay checks its secret when it is made, so `serve` fails at start).
   */
  workers?: () => Worker[];
}

/** Checks a module's face against ServiceModule while keeping the functions it offers other modules. */
export const defineModule = <M extends ServiceModule>(module: M): M => module;
