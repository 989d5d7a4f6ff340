import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The node's Prometheus metrics, in their own registry (several nodes can share a process in tests). */
export class Metrics {
  readonly registry = new Registry();
  readonly writes = new Counter({ name: 'tandem_writes_total', help: 'Writes answered, by ack level and outcome', labelNames: ['ack', 'outcome'], registers: [this.registry] });
  readonly reads = new Counter({ name: 'tandem_reads_total', help: 'Reads answered, by consistency and outcome', labelNames: ['consistency', 'outcome'], registers: [this.registry] });
  readonly commitLatency = new Histogram({
    name: 'tandem_write_latency_seconds',
    help: 'From proposal to the reply at the asked ack level',
    labelNames: ['ack'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly fsyncLatency = new Histogram({
    name: 'tandem_fsync_seconds',
    help: 'Duration of each durable write of a batch to the log (an O_DSYNC write: data and size on disk when it returns)',
    buckets: [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });
  readonly elections = new Counter({ name: 'tandem_elections_total', help: 'Elections this node started', registers: [this.registry] });
  readonly leaderChanges = new Counter({ name: 'tandem_leader_changes_total', help: 'Times this node saw a new leader', registers: [this.registry] });
  readonly truncated = new Counter({ name: 'tandem_truncated_entries_total', help: 'Entries cut from the log and written to rollback/', registers: [this.registry] });
  readonly bytesSent = new Gauge({ name: 'tandem_peer_bytes_sent', help: 'Bytes sent to peers since start', registers: [this.registry] });
  readonly followerLagEntries = new Gauge({ name: 'tandem_follower_lag_entries', help: "Entries a follower lacks (leader's view)", labelNames: ['follower'], registers: [this.registry] });
  readonly followerLagBytes = new Gauge({ name: 'tandem_follower_lag_bytes', help: "Payload bytes of the entries a follower lacks (leader's view)", labelNames: ['follower'], registers: [this.registry] });
  readonly followerLagMs = new Gauge({ name: 'tandem_follower_lag_ms', help: 'Age in ms of the oldest entry the follower lacks (leader view, 100 ms resolution)', labelNames: ['follower'], registers: [this.registry] });
  readonly digestMismatches = new Counter({ name: 'tandem_digest_mismatches_total', help: 'Checkpoints at which a follower’s state digest differed from the leader’s', labelNames: ['follower'], registers: [this.registry] });
  readonly term = new Gauge({ name: 'tandem_term', help: 'Current term', registers: [this.registry] });
  readonly isLeader = new Gauge({ name: 'tandem_is_leader', help: '1 when this node leads', registers: [this.registry] });
  readonly commitIndex = new Gauge({ name: 'tandem_commit_index', help: 'Commit index', registers: [this.registry] });
  readonly appliedIndex = new Gauge({ name: 'tandem_applied_index', help: 'Applied index', registers: [this.registry] });
  /** Writes and reads answered OK since start (plain numbers, for the status API and the dashboard's rates). */
  writesOk = 0;
  readsOk = 0;

  /**
   * Each label combination's child, looked up once: prom-client hashes the label object on every
   * inc() or observe() given labels, a cost paid per write on the hot path.
   */
  private readonly children = new Map<string, { inc(): void } | { observe(value: number): void }>();

  private child<T>(key: string, make: () => T): T {
    let found = this.children.get(key) as T | undefined;
    if (found === undefined) {
      found = make();
      this.children.set(key, found as { inc(): void });
    }
    return found;
  }

  /** Counts an answered write; `seconds` from proposal to answer when it succeeded. */
  wrote(ack: string, outcome: string, seconds: number | null): void {
    this.child(`w\u0000${ack}\u0000${outcome}`, () => this.writes.labels({ ack, outcome })).inc();
    if (seconds === null) return;
    this.writesOk++;
    this.child(`l\u0000${ack}`, () => this.commitLatency.labels({ ack })).observe(seconds);
  }

  /** Counts an answered read. */
  read(consistency: string, outcome: string): void {
    this.child(`r\u0000${consistency}\u0000${outcome}`, () => this.reads.labels({ consistency, outcome })).inc();
    if (outcome === 'ok') this.readsOk++;
  }
}
