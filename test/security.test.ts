import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TandemClient, TandemClientError } from '../src/client/client.js';
import type { Message } from '../src/core/types.js';
import { httpCall } from '../src/net/http-call.js';
import { TcpTransport } from '../src/net/transport.js';
import { peerProof, ProofChecker } from '../src/shared/security.js';
import { freePort, ProcessCluster, waitFor } from './support/process-cluster.js';

describe('peer handshake proofs', () => {
  it('accept a fresh proof once, and refuse a wrong secret, an old proof and a replay', () => {
    const checker = new ProofChecker('s3cret');
    const now = 1_000_000;
    const proof = peerProof('s3cret', 'c', 'a', 'b', now, 'n1');
    assert.equal(checker.check('c', 'a', 'b', now, 'n1', proof, now + 5), null);
    assert.match(checker.check('c', 'a', 'b', now, 'n1', proof, now + 6) ?? '', /replayed/);
    assert.match(checker.check('c', 'a', 'b', now, 'n2', peerProof('other', 'c', 'a', 'b', now, 'n2'), now) ?? '', /does not match/);
    assert.match(checker.check('c', 'a', 'b', now - 120_000, 'n3', peerProof('s3cret', 'c', 'a', 'b', now - 120_000, 'n3'), now) ?? '', /too old/);
    assert.match(checker.check('c', 'a', 'c', now, 'n4', proof, now) ?? '', /does not match/, 'a proof is bound to both ids');
    assert.match(checker.check('c', 'a', 'b', undefined, undefined, undefined, now) ?? '', /no cluster-secret proof/);
  });
});

/** A cluster with TLS on every link, a client password and a cluster secret. */
describe('a cluster with TLS, a password and a cluster secret', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'tandem-tls-'));
  const cert = join(scratch, 'node.crt');
  const key = join(scratch, 'node.key');
  const passwordFile = join(scratch, 'password');
  const secretFile = join(scratch, 'cluster-secret');
  let ca: Buffer;
  let cluster: ProcessCluster;

  before(async () => {
    // A self-signed certificate for 127.0.0.1, made here; it is also the CA every node trusts.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=tandem-test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    ca = readFileSync(cert);
    writeFileSync(passwordFile, 'client-pass\n');
    writeFileSync(secretFile, 'cluster-secret\n');
    cluster = new ProcessCluster(['e1', 'e2', 'e3'], ['--tls-cert', cert, '--tls-key', key, '--password-file', passwordFile, '--cluster-secret-file', secretFile], process.env, { token: 'client-pass', ca });
    await cluster.init();
    for (const id of cluster.ids) cluster.start(id);
    await cluster.leader();
  });
  after(async () => {
    await cluster.stopAll();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('elects a leader over mutually authenticated TLS peer links and serves HTTPS with a bearer token', async () => {
    const leader = await cluster.leader();
    const follower = cluster.ids.find((id) => id !== leader) as string;
    const written = await cluster.put(follower, 'tls-key', 'tls-value');
    assert.equal(written.status, 200, 'a write through a follower is forwarded over HTTPS with the token');
    const address = new URL(cluster.http(follower)).host;
    const anonymous = await httpCall(address, 'GET', '/v1/status', { timeoutMs: 2000, ca });
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.body.toString(), /UNAUTHORIZED/);
    const wrong = await httpCall(address, 'GET', '/v1/status', { timeoutMs: 2000, ca, token: 'nope' });
    assert.equal(wrong.status, 401);
    await assert.rejects(httpCall(address, 'GET', '/v1/status', { timeoutMs: 2000, token: 'client-pass' }), /cannot reach/, 'plain HTTP to a TLS port fails');
  });

  it('speaks RESP over TLS to a client that gives the password, and to no other', async () => {
    const seeds = cluster.respAddresses();
    const client = new TandemClient({ seeds, password: 'client-pass', tls: { ca }, timeoutMs: 5000 });
    try {
      await client.set('over-tls', 'yes');
      assert.equal((await client.get('over-tls'))?.toString(), 'yes');
    } finally {
      client.close();
    }
    const refused = new TandemClient({ seeds, password: 'wrong', tls: { ca }, timeoutMs: 2000 });
    await assert.rejects(refused.get('over-tls'), (error: unknown) => error instanceof TandemClientError && error.code === 'UNAUTHORIZED');
    refused.close();
    const port = cluster.respPort(cluster.ids[0] as string);
    const plain = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      socket.on('connect', () => socket.write('PING\r\n'));
      socket.on('close', () => resolve(text));
      socket.on('error', () => resolve(text));
    });
    assert.doesNotMatch(plain, /PONG/, 'a plain-text client gets no answer from a TLS port');
  });

  it('refuses a peer that has a valid certificate but not the cluster secret, and says why', async () => {
    const peers = new Map([
      ['e1', { host: '127.0.0.1', port: await freePort() }],
      ['e2', { host: '127.0.0.1', port: cluster.peerPorts.get('e2') as number }],
      ['e3', { host: '127.0.0.1', port: cluster.peerPorts.get('e3') as number }],
    ]);
    const received: Message[] = [];
    const impostor = new TcpTransport({
      id: 'e1',
      clusterId: 'tandem',
      peers,
      httpAddress: '127.0.0.1:1',
      onMessage: (m) => received.push(m),
      log: () => undefined,
      security: { password: null, clusterSecret: 'guessed', tls: { key: readFileSync(key), cert: ca, ca } },
    });
    await impostor.start();
    try {
      await waitFor('e2 to refuse the impostor', 10_000, () => /the handshake proof does not match this cluster’s secret/.test(cluster.output.get('e2') ?? ''));
      assert.equal(received.length, 0, 'nothing reached the impostor');
    } finally {
      await impostor.close();
    }
  });
});
