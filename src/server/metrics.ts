import type { IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LabelledHistogram, PairCounter } from './hot-metrics.js';

/** The node's Prometheus metrics, in their own registry (several nodes can share a process in tests). */
export class Metrics {
  readonly registry = new Registry();
  readonly writes = new PairCounter('tandem_writes_total', 'Writes answered, by ack level and outcome', ['ack', 'outcome'], this.registry);
  readonly reads = new PairCounter('tandem_reads_total', 'Reads answered, by consistency and outcome', ['consistency', 'outcome'], this.registry);
  readonly commitLatency = new LabelledHistogram(
    'tandem_write_latency_seconds',
    'From proposal to the reply at the asked ack level',
    'ack',
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    this.registry,
  );
  readonly fsyncLatency = new Histogram({
    name: 'tandem_fsync_seconds',
    help: 'Duration of each durable write of a batch to the log (an O_DSYNC write: data and size on disk when it returns)',
    buckets: [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });
  readonly elections = new Counter({ name: 'tandem_elections_total', help: 'Elections this node started', registers: [this.registry] });
  readonly leaderChanges = new Counter({ name: 'tandem_leader_changes_total', help: 'Times this node saw a new leader', registers: [this.registry] });
  readonly truncated = new Counter({ name: 'tandem_truncated_entries_total', help: 'Entries cut from the log and written to rollback/', registers: [this.registry] });
  readonly entriesReadFromDisk = new Counter({ name: 'tandem_log_entries_read_from_disk_total', help: 'Log entries read back from disk (older than the entries kept in memory), for a follower or for this node\'s state machine', labelNames: ['for'], registers: [this.registry] });
  readonly entryBytesReadFromDisk = new Counter({ name: 'tandem_log_bytes_read_from_disk_total', help: 'Payload bytes of the log entries read back from disk, for a follower or for the state machine', labelNames: ['for'], registers: [this.registry] });
  readonly bytesSent = new Gauge({ name: 'tandem_peer_bytes_sent', help: 'Bytes sent to peers since start', registers: [this.registry] });
  readonly followerLagEntries = new Gauge({ name: 'tandem_follower_lag_entries', help: "Entries a follower lacks (leader's view)", labelNames: ['follower'], registers: [this.registry] });
  readonly followerLagBytes = new Gauge({ name: 'tandem_follower_lag_bytes', help: "Payload bytes of the entries a follower lacks (leader's view)", labelNames: ['follower'], registers: [this.registry] });
  readonly followerLagMs = new Gauge({ name: 'tandem_follower_lag_ms', help: 'Age in ms of the oldest entry the follower lacks (leader view, 100 ms resolution)', labelNames: ['follower'], registers: [this.registry] });
  readonly digestMismatches = new Counter({ name: 'tandem_digest_mismatches_total', help: 'Checkpoints at which a follower’s state digest differed from the leader’s', labelNames: ['follower'], registers: [this.registry] });
  readonly term = new Gauge({ name: 'tandem_term', help: 'Current term', registers: [this.registry] });
  readonly isLeader = new Gauge({ name: 'tandem_is_leader', help: '1 when this node leads', registers: [this.registry] });
  readonly commitIndex = new Gauge({ name: 'tandem_commit_index', help: 'Commit index', registers: [this.registry] });
  readonly appliedIndex = new Gauge({ name: 'tandem_applied_index', help: 'Applied index', registers: [this.registry] });
  /**
   * How late the event loop ran, from a perf_hooks monitor that samples it every `sampleMs`: the
   * median, p99 and maximum since the last scrape (the monitor starts over at each), less the
   * sampling interval itself. Everything a node does waits for its loop; this is the queue.
   */
  watchEventLoop(monitor: IntervalHistogram, sampleMs: number): void {
    const late = (ns: number): number => Math.max(0, ns / 1e9 - sampleMs / 1000);
    new Gauge({
      name: 'tandem_event_loop_delay_seconds',
      help: `How late the event loop ran since the last scrape (sampled every ${sampleMs} ms): p50, p99 and max`,
      labelNames: ['quantile'],
      registers: [this.registry],
      collect() {
        if (monitor.count === 0) return;
        this.set({ quantile: '0.5' }, late(monitor.percentile(50)));
        this.set({ quantile: '0.99' }, late(monitor.percentile(99)));
        this.set({ quantile: '1' }, late(monitor.max));
        monitor.reset();
      },
    });
  }

  /** Writes and reads answered OK since start (plain numbers, for the status API and the dashboard's rates). */
  writesOk = 0;
  readsOk = 0;

  /** Counts an answered write; `seconds` from proposal to answer when it succeeded. */
  wrote(ack: string, outcome: string, seconds: number | null): void {
    this.writes.inc(ack, outcome);
    if (seconds === null) return;
    this.writesOk++;
    this.commitLatency.observe(ack, seconds);
  }

  /** Counts an answered read. */
  read(consistency: string, outcome: string): void {
    this.reads.inc(consistency, outcome);
    if (outcome === 'ok') this.readsOk++;
  }
}
