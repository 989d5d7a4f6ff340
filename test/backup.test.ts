import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ProcessCluster } from './support/process-cluster.js';

const main = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const tandem = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });

/** Backup and restore: a consistent copy of a running cluster seeds a new one. */
describe('backup and restore', () => {
  const source = new ProcessCluster(['s1', 's2', 's3'], ['--snapshot-every', '100']);
  const target = new ProcessCluster(['t1', 't2', 't3']);
  const scratch = mkdtempSync(join(tmpdir(), 'tandem-backup-'));
  after(async () => {
    await source.stopAll();
    await target.stopAll();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('copies every acknowledged write into a new cluster that then takes writes', async () => {
    await source.init();
    for (const id of source.ids) source.start(id);
    const leader = await source.leader();
    for (let i = 0; i < 150; i++) assert.equal((await source.put(leader, `key-${i}`, `value-${i}`)).status, 200);
    const follower = source.ids.find((id) => id !== leader) as string;
    const file = join(scratch, 'cluster.backup');
    const backup = tandem('backup', '--node', source.http(follower).replace('http://', ''), '--out', file);
    assert.equal(backup.status, 0, backup.stderr);
    const [, index, digest] = /backup of index (\d+) \(term \d+, digest ([0-9a-f]{16})\)/.exec(backup.stdout) ?? [];
    assert.ok(Number(index) >= 150, backup.stdout);

    await target.init();
    for (const id of target.ids) {
      const restored = tandem('restore', '--in', file, '--dir', target.dir(id), '--id', id, '--peers', target.peersOf(id));
      assert.equal(restored.status, 0, restored.stderr);
    }
    const again = tandem('restore', '--in', file, '--dir', target.dir('t1'), '--id', 't1', '--peers', target.peersOf('t1'));
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /already holds a node's data/);
    for (const id of target.ids) target.start(id);
    const statuses = await target.converged();
    // The new cluster's first leader may have added its no-op entry (which changes no state) by the
    // time the state is on disk everywhere.
    const applied = statuses[0]?.appliedIndex ?? 0;
    assert.ok(applied === Number(index) || applied === Number(index) + 1, `applied ${applied}, backup of ${index}`);
    assert.equal(statuses[0]?.digest, digest, 'the new cluster holds exactly the backed-up state');
    const newLeader = await target.leader();
    assert.equal(await (await target.get(newLeader, 'key-149')).text(), 'value-149');
    assert.equal((await target.put(newLeader, 'after-restore', 'yes')).status, 200);
  });

  it('refuses a damaged backup file by name', () => {
    const file = join(scratch, 'cluster.backup');
    const bytes = readFileSync(file);
    bytes[bytes.length - 3] ^= 0xff;
    writeFileSync(join(scratch, 'damaged.backup'), bytes);
    const restored = tandem('restore', '--in', join(scratch, 'damaged.backup'), '--dir', join(scratch, 'fresh'), '--id', 'x', '--peers', 'x=127.0.0.1:1');
    assert.notEqual(restored.status, 0);
    assert.match(restored.stderr, /damaged\.backup: checksum/);
  });
});
