import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { hideFromApiDocs } from '../../shared/html.js';
import { packageRoot } from '../../shared/paths.js';
import { defineModule } from '../module.js';
import { dashboardRoutes } from './dashboard.routes.js';
import type { DashboardServices } from './dashboard.services.js';
import { registerSessions } from './dashboard.session.js';

/**
 * The dashboard (CONTRACT §3 `GET /dashboard`): server-rendered pages for admins and affiliates, signed in
 * with an API key into a cookie session (`dashboard_sessions`), every form CSRF-checked, every action one of
 * the functions the REST routes call. Also serves `web/` (styles and small scripts) and the chart library at
 * `/assets/`. Owns `dashboard_sessions`.
 */
export type { DashboardServices } from './dashboard.services.js';

export interface DashboardDeps {
  services: DashboardServices;
  publicUrl: string;
  /** Signs the session and CSRF cookies. */
  secret: string;
}

/** `web/` and the chart library's files, the same for the dashboard and the storefront demo. */
async function assets(app: FastifyInstance) {
  const root = packageRoot();
  await app.register(fastifyStatic, { root: join(root, 'web'), prefix: '/assets/', index: false });
  await app.register(fastifyStatic, {
    root: join(root, 'node_modules', 'uplot', 'dist'),
    prefix: '/assets/vendor/uplot/',
    decorateReply: false,
    index: false,
    allowedPath: (path) => /^\/uPlot\.(iife\.min\.js|min\.css)$/.test(path),
  });
}

export function createDashboardModule(deps: DashboardDeps) {
  return defineModule({
    name: 'dashboard',
    routes: async (app: FastifyInstance) => {
      hideFromApiDocs(app);
      await assets(app);
      await registerSessions(app, { db: deps.services.db, secret: deps.secret, publicUrl: deps.publicUrl });
      await app.register(dashboardRoutes(deps.services, deps.publicUrl));
    },
  });
}
