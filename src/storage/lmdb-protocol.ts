/** What the LMDB store and its writer thread say to each other, and how both open the environment. */

/**
 * LMDB options for both threads (they share one environment, so they open it alike). Commits are
 * plain synced LMDB commits: the writer's answer means the group is on disk.
 */
export const lmdbOptions = { noMemInit: true, overlappingSync: false } as const;

/** To the writer: commit a group of changes (see change-group.ts), or close the environment. */
export type WriterRequest = { readonly kind: 'commit'; readonly group: number; readonly changes: ArrayBuffer; readonly bytes: number } | { readonly kind: 'close' };

/** From the writer: a group is committed and synced, could not be, or the environment is closed. */
export type WriterReply =
  | { readonly kind: 'committed'; readonly group: number }
  | { readonly kind: 'failed'; readonly group: number; readonly message: string }
  | { readonly kind: 'closed' };
