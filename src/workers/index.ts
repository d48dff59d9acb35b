import type { Infra } from '../compose.js';
import type { Services } from '../services.js';
import type { Worker } from './runner.js';

/** Every background worker `serve` and `worker` run. Each module adds its own here. */
export function createWorkers(_infra: Infra, _services: Services): Worker[] {
  return [];
}
