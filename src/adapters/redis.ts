import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Kv } from '../ports/kv.js';
import { assertTtlMs, LOCK_TOKEN_BYTES, type Lock } from '../ports/lock.js';

/**
 * Redis is an optimisation here (DESIGN §1, §3): PostgreSQL decides what is done, so every caller has a path
 * for "Redis did not answer". The options make that answer come quickly instead of parking the request.
 * Note that with the offline queue off, commands sent before the first connection is ready fail too, so
 * callers that need Redis at once should wait for the client's `ready` event.
 */
export function createRedisClient(url: string): Redis {
  return new Redis(url, {
    // Connect at construction, so an unreachable Redis shows in the logs at start-up, not at first use.
    lazyConnect: false,
    // A command in flight when the connection drops is retried on one reconnect, then fails; the default
    // (20 reconnects) would hold a webhook request for many seconds during an outage.
    maxRetriesPerRequest: 1,
    // Without this, commands issued while disconnected wait in memory until Redis returns, which during an
    // outage means forever and without bound; failing at once lets the caller take its fallback path.
    enableOfflineQueue: false,
    // A Redis on the same network accepts a connection in milliseconds; the default 10 s only delays noticing
    // that packets are being dropped, and ioredis keeps retrying in the background anyway.
    connectTimeout: 2_000,
    // Every command we send is O(1) on one key and answers in well under a millisecond when healthy. A server
    // that is connected but stalled (paused, swapping, partitioned without a reset) would otherwise hang the
    // caller until TCP gives up; a second is far past healthy and short enough to fall back within a request.
    commandTimeout: 1_000,
  });
}

// Compare-and-delete in one script: a GET followed by a DEL could delete a lock that expired in between and
// now belongs to someone else.
const RELEASE_LUA = `
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0`;

// Compare-and-pexpire, atomic for the same reason as release.
const EXTEND_LUA = `
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0`;

// Fixed window: the expiry is set only when the counter has none (INCR just created it), so later increments
// do not keep pushing the window forward. Checking "has no expiry" rather than "equals 1" also heals a counter
// that somehow lost its expiry, instead of letting it count forever.
const INCR_LUA = `
local n = redis.call('incr', KEYS[1])
if redis.call('pttl', KEYS[1]) == -1 then
  redis.call('pexpire', KEYS[1], ARGV[1])
end
return n`;

type Script = (key: string, ...args: (string | number)[]) => Promise<unknown>;

/** Registers `lua` on the client (EVALSHA, falling back to EVAL after a script flush) and returns a caller. */
function defineScript(redis: Redis, name: string, lua: string): Script {
  redis.defineCommand(name, { numberOfKeys: 1, lua });
  const command: unknown = Reflect.get(redis, name);
  if (typeof command !== 'function') throw new Error(`ioredis did not define the script command ${name}`);
  return (key, ...args) => command.call(redis, key, ...args) as Promise<unknown>;
}

/** The Lock port on Redis: `SET NX PX` to acquire, Lua compare-and-delete / compare-and-pexpire for the rest. */
export function redisLock(redis: Redis, prefix = 'lock:'): Lock {
  const release = defineScript(redis, 'paymentsLockRelease', RELEASE_LUA);
  const extend = defineScript(redis, 'paymentsLockExtend', EXTEND_LUA);
  return {
    async acquire(key, ttlMs) {
      assertTtlMs(ttlMs);
      const token = randomBytes(LOCK_TOKEN_BYTES).toString('hex');
      const reply = await redis.set(prefix + key, token, 'PX', ttlMs, 'NX');
      return reply === 'OK' ? token : null;
    },
    async release(key, token) {
      return (await release(prefix + key, token)) === 1;
    },
    async extend(key, token, ttlMs) {
      assertTtlMs(ttlMs);
      return (await extend(prefix + key, token, ttlMs)) === 1;
    },
  };
}

/** The Kv port on Redis; `incr` is one Lua script so the counter and its expiry are created together. */
export function redisKv(redis: Redis, prefix = ''): Kv {
  const incr = defineScript(redis, 'paymentsKvIncr', INCR_LUA);
  return {
    async get(key) {
      return redis.get(prefix + key);
    },
    async set(key, value, ttlMs) {
      assertTtlMs(ttlMs);
      await redis.set(prefix + key, value, 'PX', ttlMs);
    },
    async incr(key, ttlMs) {
      assertTtlMs(ttlMs);
      const n = await incr(prefix + key, ttlMs);
      if (typeof n !== 'number') throw new Error(`Redis answered INCR with ${typeof n}, expected an integer`);
      return n;
    },
    async del(key) {
      await redis.del(prefix + key);
    },
  };
}
