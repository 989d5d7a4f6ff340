/**
 * `npm run bench`: every comparison in one go, on this machine — Tandem beside Redis (RESP),
 * beside etcd (HTTP), failover of all three, catch-up and resources — then one Markdown report
 * under bench/results/ with the machine's cores, fsync latency and loopback round trip.
 * `--quick` runs a short version of each (about two minutes in all).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags } from '../cli/args.js';
import { describeMachine } from './machine.js';

const flags = parseFlags(process.argv.slice(2), {
  quick: { type: 'switch', help: 'a short version of each benchmark (about two minutes in all)' },
  install: { type: 'switch', help: 'apt-get install the peers (redis-server redis-tools etcd-server) when missing (as root)' },
  only: { type: 'string', help: 'comma-separated subset: redis,etcd,failover,catchup', default: 'redis,etcd,failover,catchup' },
  help: { type: 'switch', help: 'show this help' },
});

const quick = flags['quick'] === true;
const install = flags['install'] === true ? ['--install'] : [];
const parts: Record<string, { readonly title: string; readonly script: string; readonly args: readonly string[] }> = {
  redis: { title: 'Beside Redis (RESP)', script: 'redis-compare.js', args: quick ? ['--quick', '--floor'] : ['--matrix', '--curve', '--floor'] },
  etcd: { title: 'Beside etcd (HTTP, and etcd’s own gRPC tester in the full run)', script: 'etcd-compare.js', args: quick ? ['--rounds', '1', '--seconds', '3', '--floor'] : ['--matrix', '--seconds', '5', '--grpc', '--floor'] },
  failover: { title: 'Failover under write load', script: 'failover.js', args: quick ? ['--quick'] : [] },
  catchup: { title: 'Catch-up and resources', script: 'catchup.js', args: quick ? ['--quick', '--redis'] : ['--redis'] },
};

async function main(): Promise<void> {
  if (flags['help'] === true) {
    process.stdout.write('npm run bench -- [--quick] [--only redis,etcd,failover,catchup] [--install]\n');
    return;
  }
  const chosen = String(flags['only']).split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const name of chosen) if (parts[name] === undefined) throw new Error(`unknown part '${name}' (redis, etcd, failover, catchup)`);
  const machine = await describeMachine();
  const started = new Date();
  const sections = [
    `# Tandem benchmarks, ${started.toISOString()}${quick ? ' (quick)' : ''}`,
    '',
    `Machine: ${machine.cores} cores (${machine.cpu}); fdatasync of a 100-byte append ${machine.fsyncMs} ms (median of 200); loopback TCP round trip ${machine.loopbackRoundTripUs} µs (median of 2,000). Every system runs on this one machine, with its load generator on the same cores.`,
  ];
  process.stderr.write(`${sections[2]}\n`);
  let failed = false;
  for (const name of chosen) {
    const part = parts[name] as (typeof parts)[string];
    process.stderr.write(`\n== ${part.title}: node ${part.script} ${[...part.args, ...install].join(' ')}\n`);
    const run = spawnSync(process.execPath, [join(import.meta.dirname, part.script), ...part.args, ...install], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    process.stdout.write(run.stdout);
    if (run.status !== 0) {
      failed = true;
      sections.push('', `## ${part.title}`, '', `Failed (exit status ${run.status ?? run.signal}); see the output above.`);
      continue;
    }
    sections.push('', `## ${part.title}`, '', run.stdout.trim());
  }
  mkdirSync('bench/results', { recursive: true });
  const file = join('bench/results', `summary-${started.toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.md`);
  writeFileSync(file, `${sections.join('\n')}\n`);
  process.stderr.write(`\nwrote ${file}\n`);
  if (failed) process.exitCode = 1;
}

await main();
