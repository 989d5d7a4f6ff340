import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const main = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('the tandem command', () => {
  it('every command has --help', () => {
    for (const command of ['start', 'demo', 'status', 'switchover', 'put', 'get', 'del', 'sim', 'members', 'backup', 'restore']) {
      const result = run(command, '--help');
      assert.equal(result.status, 0, `${command}: ${result.stderr}`);
      assert.match(result.stdout, /--/, `${command} --help lists flags`);
      // Every flag is set apart from its text by two spaces at least (a long one once ran into it).
      for (const line of result.stdout.split('\n').filter((l) => l.startsWith('  --'))) assert.match(line, /^ {2}--[a-z-]+( N| VALUE)? {2,}\S/, `${command}: ${line}`);
    }
  });

  it('a wrong flag or value is an error that names it', () => {
    const cases: [string[], RegExp][] = [
      [['start', '--bogus', '1'], /unknown flag --bogus/],
      [['start', '--id', 'n1', '--dir', '/tmp/x', '--peers', 'n1=127.0.0.1:7001', '--http-port', 'eighty'], /--http-port must be a whole number/],
      [['start', '--id', 'n9', '--dir', '/tmp/x', '--peers', 'n1=127.0.0.1:7001', '--http-port', '8001'], /--id n9 is not one of the ids in --peers/],
      [['start', '--id', 'n1', '--dir', '/tmp/x', '--peers', 'n1=localhost', '--http-port', '8001'], /is not ID=HOST:PORT/],
      [['start', '--id', 'n1', '--dir', '/tmp/x', '--peers', 'n1=127.0.0.1:7001', '--http-port', '8001', '--ack', 'most'], /--ack: ack must be/],
      [['start', '--id', 'n1', '--peers', 'n1=127.0.0.1:7001', '--http-port', '8001'], /--dir is required/],
      [['sim', '--seeds', '0'], /--seeds must be a whole number from 1/],
      [['sim', '--bug', 'nope'], /--bug must be/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['put', 'only-a-key'], /needs KEY VALUE/],
      [['start', '--join', '127.0.0.1:8001', '--id', 'n4', '--dir', '/tmp/x', '--http-port', '8004'], /--peer-address is required with --join/],
      [['start', '--config', '/nonexistent/tandem.json'], /--config: cannot read \/nonexistent\/tandem.json/],
      [['members', 'frob'], /unknown members action 'frob'/],
    ];
    for (const [args, message] of cases) {
      const result = run(...args);
      assert.equal(result.status, 2, `${args.join(' ')} exits 2: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
  });

  it('reads flags from a --config file, with the command line overriding it', async (t) => {
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { configFromFlags } = await import('../src/cli/start.js');
    const dir = mkdtempSync(join(tmpdir(), 'tandem-config-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'n1.json');
    writeFileSync(file, JSON.stringify({ id: 'n1', dir: '/var/lib/tandem/n1', peers: 'n1=10.0.0.1:7001,n2=10.0.0.2:7001,n3=10.0.0.3:7001', 'http-port': 8001, 'resp-port': 6379, ack: 'all' }));
    const config = configFromFlags(['--config', file, '--ack', 'majority']);
    assert.ok(config !== null);
    assert.equal(config.id, 'n1');
    assert.equal(config.httpPort, 8001);
    assert.equal(config.respPort, 6379);
    assert.equal(config.peers.size, 3);
    assert.equal(config.ack, 'majority', 'the command line wins');
    assert.equal(config.snapshotEveryBytes, 64 * 1024 * 1024, 'snapshots by bytes default to 64 MiB');
    assert.equal(configFromFlags(['--config', file, '--snapshot-every-mb', '3'])?.snapshotEveryBytes, 3 * 1024 * 1024);
    assert.throws(() => configFromFlags(['--config', file, '--snapshot-every-mb', '0']), /--snapshot-every-mb must be a whole number from 1/);
    writeFileSync(file, JSON.stringify({ id: 'n1', colour: 'blue' }));
    assert.throws(() => configFromFlags(['--config', file]), /names 'colour', which is not a flag of tandem start/);
  });

  it('the three-host deployment files name only real flags', async (t) => {
    const { mkdtempSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { configFromFlags } = await import('../src/cli/start.js');
    const dir = mkdtempSync(join(tmpdir(), 'tandem-deploy-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    for (const id of ['n1', 'n2', 'n3']) {
      const settings = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'deploy', 'three-hosts', `${id}.json`), 'utf8')) as Record<string, unknown>;
      // The secret and certificate files live on the hosts, not here.
      for (const key of ['password-file', 'cluster-secret-file', 'tls-cert', 'tls-key', 'tls-ca']) delete settings[key];
      writeFileSync(join(dir, `${id}.json`), JSON.stringify(settings));
      const config = configFromFlags(['--config', join(dir, `${id}.json`)]);
      assert.equal(config?.id, id);
      assert.equal(config?.peers.size, 3);
    }
  });
});

describe('progress on a terminal', () => {
  it('shows a bar for progress lines in the readable log format, and the number in JSON', async () => {
    const { createLogger, progressBar } = await import('../src/cli/log.js');
    assert.equal(progressBar(50), '[##########..........] 50%');
    assert.equal(progressBar(0), '[....................] 0%');
    assert.equal(progressBar(100), '[####################] 100%');
    const lines: string[] = [];
    createLogger('n1', 'pretty', (line) => lines.push(line))('info', 'receiving snapshot', { received: 5, total: 10, percent: 50 });
    assert.match(lines[0] ?? '', /receiving snapshot \[##########\.{10}\] 50% received=5/);
    createLogger('n1', 'json', (line) => lines.push(line))('info', 'receiving snapshot', { percent: 50 });
    assert.match(lines[1] ?? '', /"percent":50/);
    assert.doesNotMatch(lines[1] ?? '', /#/);
  });
});
