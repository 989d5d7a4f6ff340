/** What the LMDB store and its writer thread say to each other, and how both open the environment. */
import { open, type Database, type RootDatabase } from 'lmdb';
import type { Space } from '../kv/store.js';
import { spaceCodes } from './change-group.js';

/**
 * LMDB options for both threads (they share one environment, so they open it alike). Commits are
 * plain synced LMDB commits: the writer's answer means the group is on disk.
 */
const lmdbOptions = { noMemInit: true, overlappingSync: false } as const;

/** The environment at `path` and one named database per space, opened the same way on both threads. */
export function openLmdb(path: string): { readonly root: RootDatabase; readonly dbs: Record<Space, Database<Buffer, Buffer>> } {
  const root = open({ path, ...lmdbOptions });
  const dbs = Object.fromEntries(spaceCodes.map((name) => [name, root.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary' })]));
  return { root, dbs: dbs as Record<Space, Database<Buffer, Buffer>> };
}

/** To the writer: commit a group of changes (see change-group.ts), or close the environment. */
export type WriterRequest = { readonly kind: 'commit'; readonly group: number; readonly changes: ArrayBuffer; readonly bytes: number } | { readonly kind: 'close' };

/**
 * From the writer: a group is committed and synced (`state`: the applied index and digest of the
 * state record it stored last, or null if it held none), could not be, or the environment is closed.
 */
export type WriterReply =
  | { readonly kind: 'committed'; readonly group: number; readonly state: { readonly index: number; readonly a: number; readonly b: number } | null }
  | { readonly kind: 'failed'; readonly group: number; readonly message: string }
  | { readonly kind: 'closed' };
