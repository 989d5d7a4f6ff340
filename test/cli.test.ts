import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const main = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('the tandem command', () => {
  it('every command has --help', () => {
    for (const command of ['start', 'demo', 'status', 'switchover', 'put', 'get', 'del', 'sim']) {
      const result = run(command, '--help');
      assert.equal(result.status, 0, `${command}: ${result.stderr}`);
      assert.match(result.stdout, /--/, `${command} --help lists flags`);
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
    ];
    for (const [args, message] of cases) {
      const result = run(...args);
      assert.equal(result.status, 2, `${args.join(' ')} exits 2: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
  });
});
