import { createHash } from 'node:crypto';
import type { Db } from '../ports/db.js';

/**
 * What tells one deployment's database from another's: the cluster's system identifier (made once by initdb,
 * so two servers, or two PGlite data directories, never share it), the database and the schema. A database
 * restored from a backup of the same one keeps it, and rightly: it is the same deployment.
 */
export async function databaseIdentity(db: Db): Promise<string> {
  const { rows } = await db.query<{ identity: string }>({
    text: `select system_identifier::text || '/' || current_database() || '/' || current_schema() as identity
             from pg_control_system()`,
  });
  return rows[0]!.identity;
}

/**
 * The default REDIS_KEY_PREFIX: short, and different for every deployment, so that two of them sharing one
 * Redis (staging beside production, two shops) never read each other's locks, markers or rate counters.
 */
export async function defaultRedisKeyPrefix(db: Db): Promise<string> {
  const digest = createHash('sha256')
    .update(await databaseIdentity(db))
    .digest('hex');
  return `payments:${digest.slice(0, 12)}:`;
}

/**
 * A value only this database can give, for settings that production must configure (REFERRAL_IP_SALT) and
 * development may leave out: stable across restarts, different for every deployment. Not a secret from anyone
 * who can read the database, which is why production refuses to go without its own.
 */
export async function derivedSecret(db: Db, purpose: string): Promise<string> {
  return createHash('sha256')
    .update(`${purpose}\n${await databaseIdentity(db)}`)
    .digest('hex');
}
