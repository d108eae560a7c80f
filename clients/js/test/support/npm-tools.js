/**
 * Tools from the npm registry for tests, installed once per tool list.
 *
 * `npm install` of the catalog checks' tools takes seconds even from npm's
 * cache (the AsyncAPI parser alone brings some 170 packages), so the
 * installed `node_modules` is kept under the repository's `build/js-tools/`
 * (ignored by git), in a directory named by a hash of the tool list and
 * Node's major version. A later run with the same list uses it as is; a
 * changed list installs afresh and removes the directories of other lists.
 * The install goes to a temporary sibling renamed into place when complete,
 * so two test runs at once never see half a directory.
 */

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where installs are kept: the repository's build/ (overridable for a read-only checkout). */
export const TOOLS_CACHE =
  process.env.EVENTWIRE_JS_TOOLS_CACHE ?? fileURLToPath(new URL('../../../../build/js-tools', import.meta.url));

const COMPLETE = '.complete';
const STALE_INSTALL = 60 * 60 * 1000; // a temporary install this old was left by a killed run

/** The environment without npm's own variables, so the install stays where it is told. */
function cleanEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')));
}

/** @param {string[]} tools */
function keyOf(tools) {
  const node = process.versions.node.split('.')[0];
  return createHash('sha256')
    .update(JSON.stringify({ tools: [...tools].sort(), node }))
    .digest('hex')
    .slice(0, 16);
}

async function exists(path) {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Remove the installs of other tool lists, and temporary ones left by killed runs. */
async function prune(keep) {
  for (const name of await readdir(TOOLS_CACHE)) {
    const path = join(TOOLS_CACHE, name);
    const info = await stat(path).catch(() => null); // another run may have removed it
    const stale = name.startsWith('.') ? info !== null && Date.now() - info.mtimeMs > STALE_INSTALL : name !== keep;
    if (stale) await rm(path, { recursive: true, force: true });
  }
}

/**
 * A directory whose `node_modules` holds `tools` (`name@range` specs).
 * Resolves with `{dir, cached}`; rejects with npm's error when the install fails.
 *
 * @param {string[]} tools
 * @param {{timeout: number}} options
 */
export async function installTools(tools, { timeout }) {
  const key = keyOf(tools);
  const dir = join(TOOLS_CACHE, key);
  if (await exists(join(dir, COMPLETE))) return { dir, cached: true };
  await mkdir(TOOLS_CACHE, { recursive: true });
  const staging = await mkdtemp(join(TOOLS_CACHE, `.install-${key}-`));
  try {
    await writeFile(join(staging, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
    const args = ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', '--prefix', staging];
    await run('npm', [...args, ...tools], { cwd: staging, env: cleanEnv(), timeout });
    await writeFile(join(staging, COMPLETE), `${tools.join('\n')}\n`);
    await rename(staging, dir).catch(async (error) => {
      if (!(await exists(join(dir, COMPLETE)))) throw error; // else another run finished first
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  await prune(key);
  return { dir, cached: false };
}
