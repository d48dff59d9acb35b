import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../src/shared/paths.js';

/**
 * `npm ci` warns EBADENGINE when an installed package's `engines.node` leaves out the running Node. This holds
 * the lock to package.json's `engines.node`: every package npm would install here must accept every Node the
 * service declares. Reading the lock (not node_modules) checks what a clean `npm ci` installs, on any machine.
 */

interface LockedPackage {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  engines?: { node?: string };
  os?: string[];
  cpu?: string[];
  libc?: string[];
  link?: boolean;
  resolved?: string;
}

const ROOT = packageRoot();
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as LockedPackage;
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, LockedPackage>;
};

/** npm's rule for `os`/`cpu`/`libc` lists: allowed when absent, when named, or when not `!`-excluded. */
function listAllows(list: string[] | undefined, value: string): boolean {
  if (!list || list.length === 0) return true;
  if (list.includes(`!${value}`)) return false;
  const allowed = list.filter((v) => !v.startsWith('!'));
  return allowed.length === 0 || allowed.includes(value);
}

function currentLibc(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string } };
  return report.header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** Whether npm installs `pkg` on this machine: the same check that skips other platforms' binaries. */
function fitsPlatform(pkg: LockedPackage): boolean {
  const libc = currentLibc();
  return (
    listAllows(pkg.os, process.platform) &&
    listAllows(pkg.cpu, process.arch) &&
    (libc === undefined || listAllows(pkg.libc, libc))
  );
}

/** Node's lookup: the nearest `node_modules/<name>` at or above the dependent's own folder. */
function locate(name: string, from: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (!dir) return undefined;
    const cut = dir.lastIndexOf('/node_modules/');
    dir = cut === -1 ? '' : dir.slice(0, cut);
  }
}

/**
 * The lock locations a clean `npm ci` installs here: everything reachable from the root (devDependencies
 * included, as `npm ci` installs them), where an optional dependency for another platform is skipped with all
 * it alone pulls in. A flat "skip optional entries whose os/cpu differ" would keep such a binary's own
 * dependencies (rolldown's wasm runtime), which npm never installs on this platform.
 */
function installedHere(): Map<string, LockedPackage> {
  const installed = new Map<string, LockedPackage>();
  const visit = (location: string) => {
    if (installed.has(location)) return;
    const pkg = lock.packages[location];
    if (!pkg) return;
    installed.set(location, pkg);
    const target = pkg.link && pkg.resolved ? pkg.resolved : location;
    const optionalPeers = Object.entries(pkg.peerDependenciesMeta ?? {}).filter(([, m]) => m.optional);
    const names = new Set([
      ...Object.keys(pkg.dependencies ?? {}),
      ...Object.keys(pkg.optionalDependencies ?? {}),
      ...Object.keys(pkg.peerDependencies ?? {}).filter((n) => !optionalPeers.some(([p]) => p === n)),
      ...(location === '' ? Object.keys(pkg.devDependencies ?? {}) : []),
    ]);
    for (const name of names) {
      const found = locate(name, target);
      const dep = found === undefined ? undefined : lock.packages[found];
      if (found === undefined || !dep) continue;
      if (name in (pkg.optionalDependencies ?? {}) && !fitsPlatform(dep)) continue;
      visit(found);
    }
  };
  visit('');
  installed.delete('');
  return installed;
}

describe('engines', () => {
  const declared = manifest.engines?.node;

  it('declares engines.node as a valid range', () => {
    expect(declared).toBeDefined();
    expect(semver.validRange(declared!)).not.toBeNull();
  });

  it('installs only packages whose engines.node accepts every Node that package.json declares', () => {
    const installed = installedHere();
    // The lock is read as expected: the platform's own biome binary is in, another platform's is not.
    expect(installed.has('node_modules/@biomejs/biome')).toBe(true);
    expect([...installed.keys()].some((l) => l.includes('cli-win32-'))).toBe(process.platform === 'win32');

    const range = new semver.Range(declared!);
    // Each `||` alternative's lowest version: the oldest Node of each supported line.
    const lowerBounds = range.set.map((comparators) =>
      semver.minVersion(comparators.map((c) => c.value).join(' ')),
    );
    const refusing: string[] = [];
    for (const [location, pkg] of installed) {
      const wants = pkg.engines?.node;
      if (!wants) continue;
      const name = `${location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${pkg.version}`;
      const refused = lowerBounds.filter((v) => v && !semver.satisfies(v, wants));
      // Lower bounds catch the usual case (a package that moved to a newer Node); `subset` also catches a
      // gap inside the declared range, such as an odd-numbered Node line a package leaves out.
      if (refused.length > 0 || !semver.subset(range, wants))
        refusing.push(
          `${name} needs node ${wants}${refused.length ? ` (refuses ${refused.join(', ')})` : ''}`,
        );
    }
    expect(refusing, `engines.node is ${declared}`).toEqual([]);
  });
});
