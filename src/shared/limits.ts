/** Named maxima for every queue, batch and table (TigerBeetle: put a limit on everything). */
export const limits = {
  /** The largest key accepted, in bytes. */
  keyBytesMax: 1024,
  /** The largest value accepted, in bytes. */
  valueBytesMax: 1024 * 1024,
  /** Entries carried by one append message at most. */
  appendEntriesMax: 64,
  /** Append messages in flight to one follower before the leader waits for acks. */
  inflightMessagesMax: 256,
  /** Proposals the leader holds uncommitted before it refuses more (backpressure). */
  uncommittedEntriesMax: 10_000,
  /** Reads waiting in the core for a read index or for the apply loop. */
  pendingReadsMax: 10_000,
  /** Term starts kept for telling covered from discarded entries at snapshot install. */
  termHistoryMax: 1024,
  /** Voters plus learners in one cluster. */
  membersMax: 7,
} as const;
