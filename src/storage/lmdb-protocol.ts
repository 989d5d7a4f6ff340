/** What the LMDB store and its writer thread say to each other, and how both open the environment. */
import { open, type Database, type RootDatabase } from 'lmdb';
import type { SnapshotFile, Space } from '../kv/store.js';
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

/**
 * What the writer thread is started with: the environment's path, and one 32-bit flag the store
 * raises while something waits for the commit in progress (the writer then stops resting).
 */
export interface WriterData {
  readonly path: string;
  readonly hurry: SharedArrayBuffer;
}

/** One group of changes (see change-group.ts). */
export interface GroupChanges {
  readonly group: number;
  readonly changes: SharedArrayBuffer;
  readonly bytes: number;
}

/** The applied index and digest of the state record a group stored last (null: it held none). */
export type GroupState = { readonly index: number; readonly a: number; readonly b: number } | null;

/**
 * To the writer: commit groups, in order, in one LMDB transaction; replace the whole state with a
 * snapshot's state bytes read from a file, in one transaction; or close the environment.
 */
export type WriterRequest =
  /** `restMs`: how long the commit may rest in all between chunks of its work (see Pacer); 0 when something waits for it. */
  | { readonly kind: 'commit'; readonly groups: readonly GroupChanges[]; readonly restMs: number }
  /** Restores the snapshot in the file, committing a transaction per `transactionBytes` of pairs. */
  | ({ readonly kind: 'restore'; readonly transactionBytes: number } & SnapshotFile)
  | { readonly kind: 'close' };

/**
 * From the writer: the groups are committed and synced (`states`: each group's, in order;
 * `restedMs`: how long the commit rested), could not be (`group`: the last of them), or the
 * environment is closed.
 */
export type WriterReply =
  | { readonly kind: 'committed'; readonly group: number; readonly states: readonly GroupState[]; readonly restedMs: number }
  | { readonly kind: 'failed'; readonly group: number; readonly message: string }
  | { readonly kind: 'restored'; readonly index: number; readonly a: number; readonly b: number }
  | { readonly kind: 'restoreFailed'; readonly message: string; readonly corrupt: boolean }
  | { readonly kind: 'closed' };
