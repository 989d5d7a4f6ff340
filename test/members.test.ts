import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ProcessCluster, waitFor } from './support/process-cluster.js';

const main = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const tandem = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 60_000 });

/** Membership changes on a running cluster of real processes. */
describe('membership on a running cluster', () => {
  const cluster = new ProcessCluster(['m1', 'm2', 'm3']);
  const node = (id: string): string => cluster.http(id).replace('http://', '');

  before(async () => {
    await cluster.init();
    for (const id of cluster.ids) cluster.start(id);
    const leader = await cluster.leader();
    for (let i = 0; i < 200; i++) assert.equal((await cluster.put(leader, `before-${i}`, String(i))).status, 200);
  });
  after(() => cluster.stopAll());

  it('lets a new node join with --join as a learner, catch up, and be promoted to voter', async () => {
    const leader = await cluster.leader();
    const through = cluster.ids.find((id) => id !== leader) as string;
    await cluster.startJoiner('m4', through);
    await waitFor('m4 to catch up as a learner', 20_000, async () => {
      const [joined, lead] = await Promise.all([cluster.status('m4'), cluster.status(leader)]);
      return joined.role === 'learner' && joined.appliedIndex >= lead.commitIndex - 1 && joined.appliedIndex >= 200;
    });
    const listed = tandem('members', 'list', '--node', node(through));
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, /m4\s+learner\s+127\.0\.0\.1:\d+/);
    const promoted = tandem('members', 'promote', 'm4', '--node', node(through));
    assert.equal(promoted.status, 0, promoted.stderr);
    assert.match(promoted.stdout, /m4 promoted to voter/);
    assert.match(promoted.stdout, /m4: \d+ entries, \d+ behind/, 'progress is shown');
    const status = await cluster.status(leader);
    assert.deepEqual([...status.config.voters].sort(), ['m1', 'm2', 'm3', 'm4']);
    assert.equal(await (await cluster.get('m4', 'before-199', 'linearizable')).text(), '199');
  });

  it('removes the leader: another takes over and writes go on', async () => {
    const leader = await cluster.leader();
    const other = ['m1', 'm2', 'm3', 'm4'].find((id) => id !== leader) as string;
    const removed = tandem('members', 'remove', leader, '--node', node(other));
    assert.equal(removed.status, 0, removed.stderr);
    const rest = ['m1', 'm2', 'm3', 'm4'].filter((id) => id !== leader);
    const next = await cluster.leader(rest);
    assert.notEqual(next, leader);
    const status = await cluster.status(next);
    assert.deepEqual([...status.config.voters].sort(), rest.sort());
    assert.equal((await cluster.put(next, 'after-removal', 'yes')).status, 200);
  });

  it('restarts a joined node from its members.json, without joining again', async () => {
    await cluster.kill('m4');
    const leader = await cluster.leader(['m1', 'm2', 'm3'].filter((id) => id !== 'm4'));
    assert.equal((await cluster.put(leader, 'while-m4-down', 'x')).status, 200);
    await cluster.startJoiner('m4', leader);
    await waitFor('m4 to catch up after its restart', 20_000, async () => (await (await cluster.get('m4', 'while-m4-down', 'stale')).text()) === 'x');
    assert.match(cluster.output.get('m4') ?? '', /already joined; starting with the members known/);
  });
});
