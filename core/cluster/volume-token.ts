/**
 * Token files: how two processes learn that a path names the same directory for both.
 *
 * A coordinator puts a random 128-bit token in a file of a directory and sends the path
 * and the token over gRPC. A worker (or client) that reads the same token at that path
 * sees the very same directory (same host, or a volume mounted at the same path in both
 * pods), so it may write (or copy) the files there itself instead of moving their bytes
 * through gRPC. A path that merely exists is no proof: on another machine, or behind
 * another mount, the same name is a different directory, and writes to it would be lost
 * without an error. The token is not a secret (anyone who can read the directory reads it);
 * it only tells directories apart.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';

/** In a job's staging directory while its tasks run: workers may write there. */
export const STAGING_TOKEN_FILE = '.weightspace-staging';
/** In a finished job's output directory: clients may copy from there. */
export const OUTPUT_TOKEN_FILE = '.weightspace-output';

const TOKEN = /^[0-9a-f]{32}$/;

/** True for the names of token files (never part of an output). */
export function isTokenFile(name: string): boolean {
  return name === STAGING_TOKEN_FILE || name === OUTPUT_TOKEN_FILE;
}

/**
 * A relative path that stays inside the directory it is joined to ('' is the directory
 * itself): output subdirs and file names from a peer, before they meet a local path.
 */
export function staysInside(rel: string): boolean {
  if (rel === '') return true;
  if (isAbsolute(rel)) return false;
  return !normalize(rel).split(sep).includes('..');
}

export function newToken(): string {
  return randomBytes(16).toString('hex');
}

/** Writes `token` into `dir/name` (atomically: a reader sees the old token or the new one). */
export function writeToken(dir: string, name: string, token: string): void {
  const path = join(dir, name);
  writeFileSync(`${path}.tmp`, `${token}\n`);
  renameSync(`${path}.tmp`, path);
}

export function removeToken(dir: string, name: string): void {
  rmSync(join(dir, name), { force: true });
}

/**
 * Whether `dir/name` holds `token`: false for anything else (no such file, a relative
 * path, an unreadable file, another token), never an error, so callers fall back.
 */
export function tokenMatches(dir: string, name: string, token: string): boolean {
  if (!dir || !isAbsolute(dir) || !TOKEN.test(token)) return false;
  try {
    return readFileSync(join(dir, name), 'utf8').trim() === token;
  } catch {
    return false;
  }
}
