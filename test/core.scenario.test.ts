import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Entry, Message } from '../src/core/types.js';
import { ErrorCode, TandemError } from '../src/shared/errors.js';
import { CoreCluster } from './support/core-cluster.js';

const payload = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A three-node cluster with n1 elected and its no-op committed everywhere. */
function electedCluster(ids = ['n1', 'n2', 'n3'], options: ConstructorParameters<typeof CoreCluster>[1] = {}): CoreCluster {
  const c = new CoreCluster(ids, options);
  c.timeout('n1');
  c.deliver();
  assert.equal(c.core('n1').role, 'leader');
  c.tickAll();
  c.tickAll();
  c.deliver();
  return c;
}

function codes(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof TandemError) return error.code;
    throw error;
  }
  return 'none';
}

describe('elections', () => {
  it('a follower whose timer fires runs a pre-vote, then an election, and wins with a majority', () => {
    const c = new CoreCluster(['n1', 'n2', 'n3']);
    c.timeout('n1');
    assert.equal(c.core('n1').role, 'precandidate');
    assert.equal(c.core('n1').term, 0, 'a pre-vote does not change the term');
    c.deliver();
    assert.equal(c.core('n1').role, 'leader');
    assert.equal(c.core('n1').term, 1);
    assert.equal(c.core('n2').leader, 'n1');
    assert.equal(c.core('n3').leader, 'n1');
  });

  it('a node cut off from the others keeps its term, so it does not disrupt the cluster when it returns (pre-vote)', () => {
    const c = electedCluster();
    for (let i = 0; i < 5; i++) {
      c.timeout('n3');
      c.deliver(CoreCluster.within(['n1', 'n2'], ['n3']));
    }
    assert.equal(c.core('n3').term, 1);
    c.tickAll();
    c.deliver();
    assert.equal(c.core('n1').role, 'leader');
    assert.equal(c.core('n1').term, 1);
  });

  it('a voter refuses a candidate whose log is behind its own (the up-to-date rule)', () => {
    const c = electedCluster();
    c.core('n1').propose(payload('a'), 'majority');
    c.deliver(CoreCluster.within(['n1', 'n2']));
    c.crash('n1');
    c.elect('n3', CoreCluster.within(['n2', 'n3']));
    assert.notEqual(c.core('n3').role, 'leader', 'n3 lacks the committed entry and must not lead');
    c.elect('n2', CoreCluster.within(['n2', 'n3']));
    assert.equal(c.core('n2').role, 'leader');
  });

  it('with the up-to-date rule switched off, the stale node wins and the survivor detects its committed entry being overwritten', () => {
    const c = electedCluster(['n1', 'n2', 'n3'], { bugs: { skipUpToDateCheck: true } });
    c.core('n1').propose(payload('a'), 'majority');
    c.deliver(CoreCluster.within(['n1', 'n2']));
    assert.equal(c.core('n2').commitIndex, 2);
    c.crash('n1');
    assert.throws(() => {
      c.elect('n3', CoreCluster.within(['n2', 'n3']));
      c.heartbeat();
    }, /disagrees with committed entry 2/);
    assert.equal(c.core('n3').role, 'leader', 'the stale node won');
  });

  it('a leader that cannot hear a majority for an election timeout steps down (check-quorum)', () => {
    const c = electedCluster();
    for (let i = 0; i < 25; i++) {
      c.core('n1').tick();
      c.deliver(CoreCluster.within(['n1'], ['n2', 'n3']));
    }
    assert.equal(c.core('n1').role, 'follower');
  });

  it('a priority-0 voter never campaigns while others can lead', () => {
    const c = new CoreCluster(['n1', 'n2', 'n3'], { priority: { n3: 0 } });
    for (let i = 0; i < 60; i++) c.core('n3').tick();
    c.flushAll();
    assert.equal(c.core('n3').role, 'follower');
    assert.equal(c.core('n3').term, 0);
  });

  it('a node that hears a higher term steps down; a message from an older term is refused with the newer term', () => {
    const c = electedCluster();
    c.crash('n1');
    c.elect('n2', CoreCluster.within(['n2', 'n3']));
    assert.equal(c.core('n2').role, 'leader');
    c.start('n1');
    assert.equal(c.core('n1').term, 1);
    c.core('n1').step({ type: 'heartbeat', from: 'n2', to: 'n1', term: c.core('n2').term, commit: 0, leaderCommit: 0, readRound: 0 });
    assert.equal(c.core('n1').term, c.core('n2').term);
    assert.equal(c.core('n1').leader, 'n2');
    const before = c.core('n1').lastIndex;
    c.core('n1').step({ type: 'append', from: 'n3', to: 'n1', term: 1, prevIndex: before, prevTerm: 1, entries: [], commit: 0 });
    const out = c.flush('n1').flatMap((r) => [...r.messagesNow, ...r.messages]);
    const refusal = out.find((m) => m.type === 'appendResp' && m.to === 'n3');
    assert.ok(refusal !== undefined && refusal.term === c.core('n2').term && refusal.type === 'appendResp' && !refusal.success);
  });
});

describe('replication and acks', () => {
  it('commits by majority and applies the same entries in the same order everywhere', () => {
    const c = electedCluster();
    for (let i = 0; i < 10; i++) c.core('n1').propose(payload(`v${i}`), 'majority');
    c.deliver();
    const sequence = (id: string): string => (c.applied.get(id) as Entry[]).map((e) => `${e.index}:${e.term}`).join(',');
    assert.equal(c.core('n1').commitIndex, 11);
    assert.equal(sequence('n2'), sequence('n1'));
    assert.equal(sequence('n3'), sequence('n1'));
  });

  it('releases each ack level only when its number of voters is durable', () => {
    const c = electedCluster();
    const leader = c.core('n1');
    const atLeader = leader.propose(payload('l'), 'leader');
    const atMajority = leader.propose(payload('m'), 'majority');
    const atAll = leader.propose(payload('a'), 'all');
    const acked = (): number[] => c.acked.get('n1') ?? [];
    c.flush('n1');
    assert.deepEqual(acked(), [atLeader.index], 'after its own fsync the leader acks only ack=leader');
    c.deliver(CoreCluster.within(['n1', 'n2']));
    assert.ok(acked().includes(atMajority.index));
    assert.ok(!acked().includes(atAll.index), 'ack=all waits for n3');
    c.heartbeat();
    assert.ok(acked().includes(atAll.index));
  });

  it('refuses an ack level the cluster can never meet, naming it', () => {
    const c = electedCluster();
    assert.equal(codes(() => c.core('n1').propose(payload('x'), 4)), ErrorCode.ackUnsatisfiable);
    assert.equal(codes(() => c.core('n2').propose(payload('x'), 'majority')), ErrorCode.notLeader);
  });

  it('learners receive the log but never count toward a quorum', () => {
    const c = electedCluster(['n1', 'n2', 'n3'], { learners: ['n3'] });
    const { index } = c.core('n1').propose(payload('x'), 'majority');
    c.deliver(CoreCluster.within(['n1', 'n3']));
    assert.ok(c.core('n3').lastIndex >= index, 'the learner holds the entry');
    assert.ok(c.core('n1').commitIndex < index, 'leader + learner is not a majority of two voters');
    assert.equal(c.core('n3').role, 'learner');
    c.heartbeat();
    assert.ok(c.core('n1').commitIndex >= index);
  });

  it('caps the bytes of one append and the bytes in flight to a follower, and still sends everything', () => {
    const c = electedCluster(['n1', 'n2', 'n3'], { appendBytesMax: 1000, inflightBytesMax: 3000 });
    for (let i = 0; i < 20; i++) c.core('n1').propose(new Uint8Array(500).fill(i), 'majority');
    c.flush('n1');
    const bytesOf = (m: Message): number => (m.type === 'append' ? m.entries.reduce((sum, e) => sum + e.data.length, 0) : 0);
    const toN3 = c.queue.filter((m) => m.type === 'append' && m.to === 'n3');
    assert.deepEqual(toN3.map(bytesOf), [1000, 1000, 1000], 'two 500-byte entries an append, until 3,000 bytes are in flight');
    let largest = 0;
    c.deliver((m) => {
      largest = Math.max(largest, bytesOf(m));
      return true;
    });
    assert.ok(largest <= 1000, `an append carried ${largest} bytes`);
    for (const id of ['n2', 'n3']) assert.equal(c.core(id).lastIndex, c.core('n1').lastIndex, `${id} has every entry`);
    assert.equal(c.core('n1').commitIndex, c.core('n1').lastIndex);
  });

  it('walks a diverging follower back a whole term at a time, not one entry at a time', () => {
    const c = electedCluster(['n1', 'n2', 'n3'], { appendEntriesMax: 1000 });
    // n1 writes 50 entries nobody else gets, then dies; n2 leads and writes 50 of its own.
    for (let i = 0; i < 50; i++) c.core('n1').propose(payload(`old${i}`), 'leader');
    c.flush('n1');
    c.queue = [];
    c.crash('n1');
    c.elect('n2', CoreCluster.within(['n2', 'n3']));
    for (let i = 0; i < 50; i++) c.core('n2').propose(payload(`new${i}`), 'majority');
    c.deliver(CoreCluster.within(['n2', 'n3']));
    c.start('n1');
    let refusals = 0;
    const count = (m: Message): boolean => {
      if (m.type === 'appendResp' && m.from === 'n1' && !m.success) refusals++;
      return true;
    };
    c.heartbeat(count);
    c.heartbeat(count);
    assert.ok(refusals <= 3, `${refusals} refusals: the walk-back went entry by entry`);
    assert.equal(c.core('n1').lastIndex, c.core('n2').lastIndex);
    assert.equal(c.core('n1').log.termAt(c.core('n1').lastIndex), c.core('n2').term);
  });

  it('reports the entries it cuts from its log, for rollback/', () => {
    const c = electedCluster();
    const cut = c.core('n1').propose(payload('unreplicated'), 'leader');
    c.flush('n1');
    c.queue = [];
    c.crash('n1');
    c.elect('n2', CoreCluster.within(['n2', 'n3']));
    c.core('n2').propose(payload('replacement'), 'majority');
    c.deliver(CoreCluster.within(['n2', 'n3']));
    c.start('n1');
    c.heartbeat();
    c.heartbeat();
    const truncated = c.truncated.get('n1') ?? [];
    assert.ok(truncated.some((e) => e.index === cut.index && e.term === cut.term), 'the cut entry is reported with its index and term');
    assert.equal(c.core('n1').log.termAt(cut.index), c.core('n2').term);
  });
});

describe('the current-term commit rule (Raft paper, Figure 8)', () => {
  /**
   * n1 (term 1) leaves entry X on n2 only and dies; n5 wins term 2 and writes its no-op at the
   * same index, alone, and dies; n1 returns, wins term 3 and copies X to n3 and n4 one entry per
   * message, but its term-3 no-op never arrives; n1 dies; n5 returns and wins (its last term, 2,
   * beats their 1) and overwrites X. Counting replicas of X was not enough to commit it.
   */
  function figure8(bugs: { skipCurrentTermCommitRule?: boolean }): CoreCluster {
    const c = new CoreCluster(['n1', 'n2', 'n3', 'n4', 'n5'], { bugs, appendEntriesMax: 1 });
    c.elect('n1');
    c.heartbeat();
    assert.equal(c.core('n1').commitIndex, 1);
    c.core('n1').propose(payload('X'), 'majority');
    c.deliver(CoreCluster.within(['n1', 'n2']));
    c.crash('n1');
    c.elect('n5', (m) => CoreCluster.within(['n3', 'n4', 'n5'])(m) && m.type !== 'append');
    assert.equal(c.core('n5').role, 'leader');
    assert.equal(c.core('n5').log.termAt(2), 2);
    c.crash('n5');
    c.start('n1');
    // n1's term-3 no-op never lands: it is dropped on the way to any node that could take it.
    const noNewNoop = (m: Message): boolean =>
      CoreCluster.within(['n1', 'n2', 'n3', 'n4'])(m) && !(m.type === 'append' && m.entries.some((e) => e.term === 3) && c.core(m.to).lastIndex >= 2);
    c.elect('n1', noNewNoop);
    assert.equal(c.core('n1').role, 'leader');
    assert.equal(c.core('n1').term, 3);
    c.heartbeat(noNewNoop);
    c.heartbeat(noNewNoop);
    c.crash('n1');
    c.start('n5');
    c.elect('n5', CoreCluster.within(['n2', 'n3', 'n4', 'n5']));
    assert.equal(c.core('n5').role, 'leader');
    c.heartbeat(CoreCluster.within(['n2', 'n3', 'n4', 'n5']));
    return c;
  }

  const appliedAt = (c: CoreCluster, id: string, index: number): Entry | undefined => c.applied.get(id)?.find((e) => e.index === index);

  it('with the rule, the old leader never applies X, so nothing committed is overwritten', () => {
    const c = figure8({});
    assert.equal(appliedAt(c, 'n2', 2)?.term, 2, "n5's entry is the one committed at index 2");
    assert.equal(appliedAt(c, 'n1', 2), undefined, 'n1 must not have applied X');
  });

  it('without it, X is committed by counting replicas, then overwritten: a follower holding it as committed detects the loss', () => {
    assert.throws(() => figure8({ skipCurrentTermCommitRule: true }), /disagrees with committed entry 2/);
  });
});

describe('reads', () => {
  it('a linearizable read on the leader waits for one quorum round, shared by every read waiting then', () => {
    const c = electedCluster();
    const leader = c.core('n1');
    leader.read(1, { kind: 'linearizable' });
    leader.read(2, { kind: 'linearizable' });
    const readies = c.flush('n1');
    const heartbeats = readies.flatMap((r) => r.messagesNow).filter((m) => m.type === 'heartbeat');
    assert.equal(heartbeats.length, 2, 'one heartbeat per follower for both reads');
    assert.equal(c.reads.get('n1')?.has(1), false, 'not served before a quorum confirms');
    c.deliver(CoreCluster.within(['n1', 'n2']));
    assert.equal(c.reads.get('n1')?.get(1), leader.commitIndex);
    assert.equal(c.reads.get('n1')?.get(2), leader.commitIndex);
  });

  it('a leader cut off from its quorum never serves a linearizable read', () => {
    const c = electedCluster();
    c.core('n1').read(7, { kind: 'linearizable' });
    for (let i = 0; i < 30; i++) {
      c.core('n1').tick();
      c.deliver(CoreCluster.within(['n1'], ['n2', 'n3']));
    }
    assert.equal(c.reads.get('n1')?.has(7), false);
    assert.equal(c.failedReads.get('n1')?.get(7), 'NOT_LEADER', 'it is refused once the leader steps down');
  });

  it('a follower serves a linearizable read at the read index it gets from the leader', () => {
    const c = electedCluster();
    c.core('n1').propose(payload('x'), 'majority');
    c.deliver();
    c.core('n3').read(9, { kind: 'linearizable' });
    c.deliver();
    assert.equal(c.reads.get('n3')?.get(9), c.core('n1').commitIndex);
    assert.ok(c.core('n3').appliedIndex >= c.core('n1').commitIndex);
  });

  it('session and after:<index> reads wait until the replica has applied that index', () => {
    const c = electedCluster();
    const { index } = c.core('n1').propose(payload('x'), 'majority');
    c.flush('n1');
    c.core('n3').read(3, { kind: 'after', index });
    c.core('n3').read(4, { kind: 'session', index });
    c.flush('n3');
    assert.equal(c.reads.get('n3')?.has(3), false);
    c.deliver();
    assert.equal(c.reads.get('n3')?.get(3), index);
    assert.equal(c.reads.get('n3')?.get(4), index);
  });

  it('a bounded read is refused by a follower that has not heard from the leader within the bound', () => {
    const c = electedCluster();
    c.core('n3').read(5, { kind: 'bounded', ms: 50 });
    c.flush('n3');
    assert.ok(c.reads.get('n3')?.has(5), 'fresh follower serves it');
    for (let i = 0; i < 8; i++) c.core('n3').tick();
    c.core('n3').read(6, { kind: 'bounded', ms: 50 });
    c.flush('n3');
    assert.equal(c.failedReads.get('n3')?.get(6), 'STALE_READ');
    c.core('n3').read(8, { kind: 'stale' });
    c.flush('n3');
    assert.ok(c.reads.get('n3')?.has(8), 'stale reads are served at once');
  });
});

describe('leader transfer', () => {
  it('pauses writes, brings the target up to date, and hands over', () => {
    const c = electedCluster();
    c.core('n1').propose(payload('a'), 'majority');
    c.flush('n1');
    c.core('n1').transferLeadership('n3');
    assert.equal(codes(() => c.core('n1').propose(payload('b'), 'majority')), ErrorCode.transferInProgress);
    c.deliver();
    assert.equal(c.core('n3').role, 'leader');
    assert.equal(c.core('n1').role, 'follower');
    assert.equal(c.core('n3').log.termAt(2), 1, 'the target had every entry before it campaigned');
  });

  it('refuses a target that is not a voter', () => {
    const c = electedCluster(['n1', 'n2', 'n3'], { learners: ['n3'] });
    assert.equal(codes(() => c.core('n1').transferLeadership('n3')), ErrorCode.badRequest);
  });
});

describe('membership', () => {
  it('adds a learner, refuses to promote it before it catches up, then promotes it', () => {
    const c = electedCluster(['n1', 'n2', 'n3'], { learners: ['n3'] });
    for (let i = 0; i < 5; i++) c.core('n1').propose(payload(`v${i}`), 'majority');
    c.deliver(CoreCluster.within(['n1', 'n2']));
    assert.match(catchMessage(() => c.core('n1').changeMembership({ type: 'promote', node: 'n3' })), /not caught up/);
    c.heartbeat();
    c.core('n1').changeMembership({ type: 'promote', node: 'n3' });
    assert.equal(codes(() => c.core('n1').changeMembership({ type: 'remove', node: 'n2' })), ErrorCode.membershipChangeInProgress, 'one change at a time');
    c.deliver();
    assert.deepEqual([...c.core('n1').config.voters].sort(), ['n1', 'n2', 'n3']);
    assert.equal(c.core('n3').role, 'follower');
  });

  it('a removed leader steps down once its removal commits', () => {
    const c = electedCluster();
    c.core('n1').changeMembership({ type: 'remove', node: 'n1' });
    c.deliver();
    c.heartbeat();
    assert.notEqual(c.core('n1').role, 'leader');
    assert.deepEqual([...c.core('n2').config.voters].sort(), ['n2', 'n3']);
  });
});

describe('snapshots', () => {
  it('a follower that needs compacted entries is sent a snapshot and continues from it', () => {
    const c = electedCluster();
    c.crash('n3');
    for (let i = 0; i < 20; i++) c.core('n1').propose(payload(`v${i}`), 'majority');
    c.deliver();
    c.heartbeat();
    const leader = c.core('n1');
    const meta = leader.compact(leader.appliedIndex);
    assert.equal(meta.index, leader.appliedIndex);
    c.start('n3');
    c.heartbeat();
    c.heartbeat();
    assert.equal(c.snapshots.get('n3'), meta.index);
    assert.equal(c.core('n3').lastIndex, leader.lastIndex);
    c.core('n1').propose(payload('after'), 'all');
    c.deliver();
    assert.equal(c.core('n3').commitIndex, leader.commitIndex);
  });
});

describe('entries no longer in memory', () => {
  it('a leader keeps only its newest applied payloads, and feeds a follower behind them from its disk', () => {
    const c = electedCluster(['n1', 'n2', 'n3'], { logCacheBytes: 10, appendEntriesMax: 4 });
    c.crash('n3');
    for (let i = 0; i < 20; i++) c.core('n1').propose(payload(`value-${i}`), 'majority');
    c.deliver();
    c.heartbeat();
    const leader = c.core('n1');
    assert.equal(leader.appliedIndex, 21);
    assert.equal(leader.log.coldThrough, 20, 'only the newest entry (8 bytes of 10) stays in memory');
    assert.ok(leader.log.payloadBytes <= 10);
    c.start('n3');
    for (let i = 0; i < 3; i++) c.heartbeat();
    assert.ok(c.entriesLoaded >= 18, `the entries n3 lacked came from n1's disk (${c.entriesLoaded} read)`);
    assert.equal(c.core("n3").lastIndex, 21);
    assert.equal(c.core("n3").commitIndex, 21);
    const text = (entries: Entry[]): string[] => entries.map((e) => `${e.index}:${e.term}:${new TextDecoder().decode(e.data)}`);
    assert.deepEqual(text(c.applied.get('n3') ?? []), text(c.durable.get('n1')?.entries.slice(0) ?? []), 'n3 applied exactly the leader log');
  });

  it('a node whose state store is behind holds committed entries in the log, and reads them back from disk to apply them', () => {
    const c = electedCluster(['n1', 'n2', 'n3'], { logCacheBytes: 0 });
    c.core('n2').holdApply(true);
    for (let i = 0; i < 10; i++) c.core('n1').propose(payload(`held-${i}`), 'majority');
    c.deliver();
    c.heartbeat();
    const n2 = c.core('n2');
    assert.equal(n2.commitIndex, 11);
    assert.equal(n2.appliedIndex, 1, 'nothing handed while held');
    assert.equal(n2.log.coldThrough, 11, 'committed and on disk: out of memory, though not applied');
    const loadedBefore = c.entriesLoaded;
    n2.holdApply(false);
    c.flush('n2');
    c.serveLoads();
    const text = (entries: Entry[] | undefined): string[] => (entries ?? []).map((e) => `${e.index}:${e.term}:${new TextDecoder().decode(e.data)}`);
    assert.equal(c.entriesLoaded - loadedBefore, 10, 'the ten held entries came back from disk');
    assert.equal(n2.appliedIndex, 11);
    assert.deepEqual(text(c.applied.get('n2')), text(c.applied.get('n1')), 'n2 applied what the leader applied, in order');
  });

  it('a read overtaken by a snapshot sends the snapshot, and one for an old term is ignored', () => {
    const c = electedCluster(['n1', 'n2', 'n3'], { logCacheBytes: 0 });
    c.crash('n3');
    for (let i = 0; i < 10; i++) c.core('n1').propose(payload(`v${i}`), 'majority');
    c.deliver();
    c.heartbeat();
    c.start('n3');
    c.holdLoads = true;
    c.heartbeat();
    const leader = c.core('n1');
    const held = c.loads.find((l) => l.node === 'n1');
    assert.ok(held !== undefined, 'the leader asked for n3\'s entries from disk');
    assert.equal(leader.loadWanted(held.load), true);
    leader.compact(leader.appliedIndex);
    assert.equal(leader.loadWanted(held.load), false, 'a snapshot now covers what was asked for');
    c.holdLoads = false;
    c.serveLoads();
    c.deliver();
    c.heartbeat();
    assert.equal(c.snapshots.get('n3'), leader.log.snapshotIndex, 'n3 got the snapshot instead');
    assert.equal(c.core('n3').lastIndex, leader.lastIndex);
    assert.equal(leader.loadWanted({ ...held.load, term: held.load.term - 1 }), false);
  });
});

function catchMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return (error as Error).message;
  }
  return '';
}
