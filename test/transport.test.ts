import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { crc32c } from '../src/codec/crc32c.js';
import type { Message } from '../src/core/types.js';
import type { SnapshotReader } from '../src/engine/interfaces.js';
import { TcpTransport, type PeerAddress } from '../src/net/transport.js';
import { stagedSnapshotPattern } from '../src/shared/staged-snapshots.js';
import { chunkHeaderBytes, SnapshotAssembler, snapshotStagedBytesMax } from '../src/net/snapshot-assembler.js';
import { freePort, waitFor } from './support/process-cluster.js';

interface Node {
  transport: TcpTransport;
  inbox: Message[];
  logs: { event: string; fields: Record<string, unknown> }[];
}

const started: TcpTransport[] = [];
after(async () => {
  for (const t of started) await t.close();
});

async function node(id: string, clusterId: string, peers: Map<string, PeerAddress>, snapshotStageDir?: string): Promise<Node> {
  const inbox: Message[] = [];
  const logs: Node['logs'] = [];
  const transport = new TcpTransport({
    id,
    clusterId,
    peers,
    httpAddress: `127.0.0.1:1`,
    onMessage: (m) => inbox.push(m),
    log: (_level, event, fields) => logs.push({ event, fields }),
    ...(snapshotStageDir === undefined ? {} : { snapshotStageDir }),
  });
  await transport.start();
  started.push(transport);
  return { transport, inbox, logs };
}

const heartbeat = (from: string, to: string): Message => ({ type: 'heartbeat', from, to, term: 1, commit: 0, leaderCommit: 0, readRound: 0 });

/** Two transports of one cluster, connected: b has heard a, and b's inbox is empty again. */
async function connectedPair(clusterId: string, bStageDir?: string): Promise<{ a: Node; b: Node }> {
  const peers = new Map([
    ['a', { host: '127.0.0.1', port: await freePort() }],
    ['b', { host: '127.0.0.1', port: await freePort() }],
  ]);
  const a = await node('a', clusterId, peers);
  const b = await node('b', clusterId, peers, bStageDir);
  await waitFor('b to hear a', 5000, () => {
    a.transport.send(heartbeat('a', 'b'));
    return b.inbox.length > 0;
  });
  b.inbox.length = 0;
  return { a, b };
}

function rawFrame(kind: number, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32LE(payload.length + 1, 0);
  header.writeUInt8(kind, 4);
  return Buffer.concat([header, payload]);
}

async function rawConnect(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.on('error', () => {});
  return socket;
}

describe('the peer transport', () => {
  it('connects a pair once, carries messages both ways, and streams a large snapshot in checked chunks', async () => {
    const { a, b } = await connectedPair('c1');
    b.transport.send(heartbeat('b', 'a'));
    await waitFor('a to hear b', 5000, () => a.inbox.length > 0);
    assert.equal(b.transport.httpAddresses.get('a'), '127.0.0.1:1', 'the handshake carries the HTTP address');
    const data = new Uint8Array(3 * 1024 * 1024 + 123).map((_, i) => i % 251);
    const meta = { index: 10, term: 1, config: { voters: ['a', 'b'], learners: [] }, termStarts: [] };
    a.transport.send({ type: 'snapshot', from: 'a', to: 'b', term: 1, meta, data });
    const received = await waitFor('the snapshot', 10_000, () => b.inbox.find((m) => m.type === 'snapshot'));
    assert.ok(received.type === 'snapshot' && received.data instanceof Uint8Array);
    assert.equal(received.data.length, data.length);
    assert.deepEqual(Buffer.from(received.data).subarray(-1000), Buffer.from(data).subarray(-1000));
  });

  it('carries appends whole, small ones (one buffer) and large ones (written in parts), in order', async () => {
    const { a, b } = await connectedPair('c-parts');
    const entries = (count: number, bytes: number, first: number) =>
      Array.from({ length: count }, (_, k) => ({ index: first + k, term: 1, kind: 'command' as const, data: new Uint8Array(bytes).fill((first + k) % 251) }));
    const sent: Message[] = [
      { type: 'append', from: 'a', to: 'b', term: 1, prevIndex: 0, prevTerm: 0, commit: 0, entries: entries(2, 100, 1) },
      { type: 'append', from: 'a', to: 'b', term: 1, prevIndex: 2, prevTerm: 1, commit: 2, entries: entries(40, 4096, 3) },
      { type: 'append', from: 'a', to: 'b', term: 1, prevIndex: 42, prevTerm: 1, commit: 42, entries: entries(1, 300_000, 43) },
    ];
    for (const message of sent) a.transport.send(message);
    const appends = await waitFor('three appends', 10_000, () => {
      const got = b.inbox.filter((m) => m.type === 'append');
      return got.length >= 3 ? got : undefined;
    });
    // Each entry as index:term:kind:length:hash of its bytes, so a failure prints a short line.
    const summary = (m: Message) => (m.type === 'append' ? `${m.prevIndex}/${m.commit} ` + m.entries.map((e) => `${e.index}:${e.term}:${e.kind}:${e.data.length}:${crc32c(e.data)}`).join(',') : m.type);
    assert.deepEqual(appends.map(summary), sent.map(summary));
  });

  it('streams a snapshot a chunk per turn: messages sent after it overtake it, and a re-send of it is not sent twice', async () => {
    const { a, b } = await connectedPair('c2');
    const data = new Uint8Array(20 * 1024 * 1024).map((_, i) => i % 253);
    const meta = { index: 20, term: 1, config: { voters: ['a', 'b'], learners: [] }, termStarts: [] };
    a.transport.send({ type: 'snapshot', from: 'a', to: 'b', term: 1, meta, data });
    a.transport.send({ type: 'snapshot', from: 'a', to: 'b', term: 1, meta, data });
    a.transport.send(heartbeat('a', 'b'));
    await waitFor('the snapshot', 20_000, () => b.inbox.some((m) => m.type === 'snapshot'));
    // Let a second copy arrive, if one was sent: it would follow within a few chunks' time.
    await waitFor('the heartbeat', 5000, () => b.inbox.some((m) => m.type === 'heartbeat'));
    a.transport.send(heartbeat('a', 'b'));
    await waitFor('a later heartbeat', 5000, () => b.inbox.filter((m) => m.type === 'heartbeat').length >= 2);
    const kinds = b.inbox.map((m) => m.type);
    assert.ok(kinds.indexOf('heartbeat') < kinds.indexOf('snapshot'), `the heartbeat went out between the chunks: ${kinds.join(', ')}`);
    assert.equal(kinds.filter((k) => k === 'snapshot').length, 1, 'the re-sent snapshot was already on its way');
    const received = b.inbox.find((m) => m.type === 'snapshot');
    assert.ok(received?.type === 'snapshot' && received.data instanceof Uint8Array && Buffer.compare(Buffer.from(received.data), Buffer.from(data)) === 0);
  });

  it('reads a snapshot from its reader a chunk at a time and closes it; one that fails to read is dropped, logged', async () => {
    const { a, b } = await connectedPair('c5');
    const data = new Uint8Array(5 * 1024 * 1024 + 7).map((_, i) => (i * 31) % 249);
    const meta = (index: number) => ({ index, term: 1, config: { voters: ['a', 'b'], learners: [] }, termStarts: [] });
    /** A reader over `data` that fails at `failAt` and records its reads and whether it was closed. */
    const reader = (index: number, failAt: number) => {
      const seen = { reads: [] as number[], inFlight: 0, mostInFlight: 0, closed: false };
      const r: SnapshotReader = {
        meta: meta(index),
        bytes: data.length,
        file: null,
        read(offset, length, done) {
          seen.reads.push(offset);
          seen.mostInFlight = Math.max(seen.mostInFlight, ++seen.inFlight);
          setImmediate(() => {
            seen.inFlight--;
            if (offset >= failAt) done(new Error('injected read failure'), null);
            else done(null, data.subarray(offset, offset + length));
          });
        },
        close() {
          seen.closed = true;
        },
      };
      return { r, seen };
    };
    const failing = reader(30, 2 * 1024 * 1024);
    const good = reader(31, Infinity);
    a.transport.sendSnapshot({ type: 'snapshot', from: 'a', to: 'b', term: 1, meta: failing.r.meta, data: null }, failing.r);
    a.transport.sendSnapshot({ type: 'snapshot', from: 'a', to: 'b', term: 1, meta: good.r.meta, data: null }, good.r);
    const received = await waitFor('the second snapshot', 20_000, () => b.inbox.find((m) => m.type === 'snapshot'));
    assert.ok(received.type === 'snapshot' && received.data instanceof Uint8Array);
    assert.equal(received.meta.index, 31, 'the snapshot that failed to read was not sent');
    assert.ok(Buffer.from(received.data).equals(Buffer.from(data)));
    assert.deepEqual(good.seen.reads, [0, 1, 2, 3, 4, 5].map((k) => k * 1024 * 1024), 'one chunk at a time, in order');
    assert.equal(good.seen.mostInFlight, 1);
    assert.ok(failing.seen.closed && good.seen.closed, 'both readers closed');
    const logged = a.logs.find((l) => l.event === 'snapshot not sent: reading it failed');
    assert.equal(logged?.fields['index'], 30);
    assert.equal(logged?.fields['error'], 'injected read failure');
    // One larger than a receiver accepts is not read at all, and said so.
    const huge = reader(32, 0);
    a.transport.sendSnapshot({ type: 'snapshot', from: 'a', to: 'b', term: 1, meta: huge.r.meta, data: null }, { ...huge.r, bytes: snapshotStagedBytesMax + 1 });
    assert.deepEqual(huge.seen.reads, []);
    assert.equal(a.logs.find((l) => l.event === 'snapshot not sent: larger than a peer accepts')?.fields['index'], 32);
  });

  it('stages a snapshot received in chunks in a file, not in memory; a stream cut off leaves no file', async () => {
    const stage = mkdtempSync(join(tmpdir(), 'tandem-stage-'));
    try {
      const { a, b } = await connectedPair('c6', stage);
      const data = new Uint8Array(5 * 1024 * 1024 + 11).map((_, i) => (i * 13) % 251);
      const meta = { index: 40, term: 1, config: { voters: ['a', 'b'], learners: [] }, termStarts: [] };
      a.transport.send({ type: 'snapshot', from: 'a', to: 'b', term: 1, meta, data });
      const received = await waitFor('the snapshot', 20_000, () => b.inbox.find((m) => m.type === 'snapshot'));
      assert.ok(received.type === 'snapshot' && received.data !== null && !(received.data instanceof Uint8Array), 'staged, not in memory');
      assert.equal(received.data.bytes, data.length);
      assert.ok(stagedSnapshotPattern.test(basename(received.data.path)) && dirname(received.data.path) === stage);
      assert.ok(readFileSync(received.data.path).equals(Buffer.from(data)));
      rmSync(received.data.path);
      // One cut off part-way: its file goes when the connection does. Its reader gives the first
      // chunk and holds the rest, so the stream is certainly under way and unfinished when the
      // connection closes (a 40 MiB one sent whole could arrive complete before the close).
      const held: SnapshotReader = {
        meta: { ...meta, index: 41 },
        bytes: 40 * 1024 * 1024,
        file: null,
        read(offset, length, done) {
          if (offset === 0) setImmediate(() => done(null, new Uint8Array(length)));
        },
        close() {},
      };
      a.transport.sendSnapshot({ type: 'snapshot', from: 'a', to: 'b', term: 1, meta: held.meta, data: null }, held);
      // The stream's file is the newest staged (its name ends in a counter of streams).
      const serial = (name: string): number => Number(/-(\d+)\.part$/.exec(name)?.[1] ?? -1);
      const partial = await waitFor('a stream under way', 20_000, () => readdirSync(stage).sort((x, y) => serial(y) - serial(x))[0]);
      await a.transport.close();
      await waitFor(`the partial file ${partial} removed`, 10_000, () => !readdirSync(stage).includes(partial));
      assert.deepEqual(b.inbox.filter((m) => m.type === 'snapshot').map((m) => m.type === 'snapshot' && m.meta.index), [40], 'the cut-off snapshot was not delivered');
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
  });

  it('refuses a node of another cluster, and an unknown node id, with a logged reason', async () => {
    const port = await freePort();
    const peers = new Map([
      ['a', { host: '127.0.0.1', port }],
      ['z', { host: '127.0.0.1', port: await freePort() }],
    ]);
    const a = await node('a', 'right', peers);
    for (const hello of [
      { clusterId: 'wrong', from: 'z', to: 'a', httpAddress: 'x' },
      { clusterId: 'right', from: 'stranger', to: 'a', httpAddress: 'x' },
    ]) {
      const socket = await rawConnect(port);
      socket.write(rawFrame(1, Buffer.from(JSON.stringify(hello))));
      await new Promise((resolve) => socket.once('close', resolve));
    }
    const reasons = a.logs.filter((l) => l.event === 'peer connection refused').map((l) => String(l.fields['reason']));
    assert.ok(reasons.some((r) => r.includes('another cluster')), reasons.join('; '));
    assert.ok(reasons.some((r) => r.includes('not one of our peers')), reasons.join('; '));
    assert.equal(a.inbox.length, 0);
  });

  it('drops a connection that sends an oversized frame length, a malformed message or a corrupt snapshot chunk', async () => {
    const port = await freePort();
    const peers = new Map([
      ['a', { host: '127.0.0.1', port }],
      ['z', { host: '127.0.0.1', port: await freePort() }],
    ]);
    const a = await node('a', 'c', peers);
    const hello = rawFrame(1, Buffer.from(JSON.stringify({ clusterId: 'c', from: 'z', to: 'a', httpAddress: 'x' })));
    const huge = Buffer.alloc(4);
    huge.writeUInt32LE(0xfffffff0, 0);
    const badChunk = Buffer.alloc(40);
    badChunk.writeUInt32LE(12345, 0);
    badChunk.writeDoubleLE(20, 4);
    badChunk.writeDoubleLE(0, 12);
    for (const attack of [huge, rawFrame(2, Buffer.from([99, 1, 2, 3])), rawFrame(3, badChunk)]) {
      const socket = await rawConnect(port);
      socket.write(hello);
      socket.write(attack);
      await new Promise((resolve) => socket.once('close', resolve));
    }
    const reasons = a.logs.filter((l) => l.event === 'peer connection refused').map((l) => String(l.fields['reason']));
    assert.ok(reasons.some((r) => r.includes('frame length')), reasons.join('; '));
    assert.ok(reasons.some((r) => r.includes('malformed frame')), reasons.join('; '));
    assert.ok(reasons.some((r) => r.includes('checksum mismatch')), reasons.join('; '));
    assert.equal(a.inbox.length, 0);
  });
});

describe('the snapshot assembler', () => {
  /** A chunk frame as the transport sends it. */
  function chunkFrame(total: number, offset: number, chunk: Uint8Array): Uint8Array {
    const frame = Buffer.alloc(chunkHeaderBytes + chunk.length);
    frame.writeUInt32LE(crc32c(chunk), 0);
    frame.writeDoubleLE(total, 4);
    frame.writeDoubleLE(offset, 12);
    frame.set(chunk, chunkHeaderBytes);
    return frame;
  }

  it('gives up a stream it cannot stage (the directory is gone), naming why, without throwing', () => {
    const assembler = new SnapshotAssembler(join(tmpdir(), 'tandem-no-such-dir', 'snapshots'), 'a');
    const problem = assembler.add(chunkFrame(10, 0, Buffer.alloc(5, 1)));
    assert.match(problem ?? '', /could not stage the snapshot: ENOENT/);
    assert.equal(assembler.take(), null);
  });

  it('stages chunks at their offsets and hands over the file once complete; a restarted stream replaces the first', () => {
    const stage = mkdtempSync(join(tmpdir(), 'tandem-stage-'));
    try {
      const assembler = new SnapshotAssembler(stage, 'a/b');
      assert.equal(assembler.add(chunkFrame(6, 0, Buffer.from('abc'))), null);
      const first = readdirSync(stage);
      assert.equal(first.length, 1);
      // The leader starts again from 0: the first stream's file goes.
      assert.equal(assembler.add(chunkFrame(6, 0, Buffer.from('xyz'))), null);
      assert.equal(readdirSync(stage).filter((name) => first.includes(name)).length, 0);
      assert.match(assembler.add(chunkFrame(6, 4, Buffer.from('!!'))) ?? '', /does not follow 3 of 6/);
      assert.equal(assembler.add(chunkFrame(6, 3, Buffer.from('uvw'))), null);
      const data = assembler.take();
      assert.ok(data !== null && !(data instanceof Uint8Array));
      assert.equal(readFileSync(data.path, 'utf8'), 'xyzuvw');
      assert.ok(stagedSnapshotPattern.test(basename(data.path)) && !basename(data.path).includes('/'));
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
  });
});
