import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ProcessCluster, waitFor } from './support/process-cluster.js';

/** A full disk (a write error injected in the log's writer): stop acknowledging, say why, recover. */
describe('a full disk', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'tandem-disk-'));
  const faultFile = (id: string): string => join(scratch, `${id}.json`);
  const cluster = new ProcessCluster(['k1', 'k2', 'k3'], ['--request-timeout-ms', '1500'], { ...process.env, TANDEM_FAULT_FILE: join(scratch, '{id}.json') });
  const acknowledged = new Map<string, string>();

  before(async () => {
    await cluster.init();
    for (const id of cluster.ids) cluster.start(id);
    await cluster.leader();
  });
  after(async () => {
    await cluster.stopAll();
    rmSync(scratch, { recursive: true, force: true });
  });

  const put = async (key: string, value: string): Promise<number> => {
    const leader = await cluster.leader();
    const response = await cluster.put(leader, key, value);
    if (response.status === 200) acknowledged.set(key, value);
    return response.status;
  };

  it('on the leader alone: it stops acknowledging, says why, and another node leads on', async () => {
    for (let i = 0; i < 20; i++) assert.equal(await put(`before-${i}`, String(i)), 200);
    const leader = await cluster.leader();
    writeFileSync(faultFile(leader), JSON.stringify({ full: true }));
    // A full disk shows on the next write.
    const stuck = await cluster.put(leader, 'meets-a-full-disk', 'x');
    assert.notEqual(stuck.status, 200, 'a write the leader cannot make durable is not acknowledged');
    await waitFor('the old leader to report its disk', 10_000, async () => /disk full|ENOSPC/.test((await cluster.status(leader)).diskProblem ?? ''));
    const next = await cluster.leader(cluster.ids.filter((id) => id !== leader));
    assert.notEqual(next, leader, 'a leader that cannot write its log loses its role');
    assert.equal(await put('during-one-full', 'x'), 200);
    assert.match(cluster.output.get(leader) ?? '', /the log cannot be written: disk full/);
    writeFileSync(faultFile(leader), '{}');
    await cluster.converged();
    assert.equal((await cluster.status(leader)).diskProblem, null, 'it carries on once space returns');
  });

  it('everywhere: nothing is acknowledged until space returns, then every acknowledged write is there', async () => {
    const leader = await cluster.leader();
    for (const id of cluster.ids) writeFileSync(faultFile(id), JSON.stringify({ full: true }));
    const refused = await cluster.put(leader, 'during-all-full', 'x');
    assert.notEqual(refused.status, 200, `a write is not acknowledged while no disk takes it (${refused.status})`);
    await waitFor('the leader to report its disk', 10_000, async () => (await cluster.status(leader)).diskProblem !== null);
    for (const id of cluster.ids) writeFileSync(faultFile(id), '{}');
    await waitFor('a write to succeed again', 20_000, async () => (await put('after-space-returns', 'y')) === 200);
    const statuses = await cluster.converged();
    assert.ok(statuses.every((s) => s.diskProblem === null));
    for (const id of cluster.ids) {
      for (const [key, value] of acknowledged) assert.equal(await (await cluster.get(id, key, 'stale')).text(), value, `${key} on ${id}`);
    }
  });
});
