/** Named maxima for every queue, batch and table (TigerBeetle: put a limit on everything). */
export const limits = {
  /** The largest key accepted, in bytes. */
  keyBytesMax: 1024,
  /** The largest value accepted, in bytes. */
  valueBytesMax: 1024 * 1024,
  /** Entries carried by one append message at most. */
  appendEntriesMax: 64,
  /** Payload bytes carried by one append message (past its first entry). */
  appendBytesMax: 1024 * 1024,
  /** Append messages in flight to one follower before the leader waits for acks. */
  inflightMessagesMax: 256,
  /**
   * Payload bytes in flight to one follower before the leader waits for acks. With entries of
   * many writes, 256 messages of 64 entries were gigabytes: a follower catching up from the log
   * had the leader encode hundreds of megabytes in one turn (stalls of 516-773 ms, a new leader),
   * and at 8 MiB the follower still stalled up to 944 ms applying what one turn brought.
   */
  inflightBytesMax: 2 * 1024 * 1024,
  /**
   * Payload bytes of committed, durable entries a node keeps in memory: older entries since the
   * snapshot are read back from disk when a follower (or the state machine) needs them; a healthy
   * follower is a few MiB behind at most.
   */
  logCacheBytes: 32 * 1024 * 1024,
  /** Committed entries read back from disk for the state machine at a time, at most, and their payload bytes. */
  applyReadEntriesMax: 10_000,
  applyReadBytesMax: 4 * 1024 * 1024,
  /** Proposals the leader holds uncommitted before it refuses more (backpressure). */
  uncommittedEntriesMax: 10_000,
  /** Reads waiting in the core for a read index or for the apply loop. */
  pendingReadsMax: 10_000,
  /** Term starts kept for telling covered from discarded entries at snapshot install. */
  termHistoryMax: 1024,
  /** Voters plus learners in one cluster. */
  membersMax: 7,
} as const;
