/**
 * `npm run chaos -- --seconds 60 --seed S [--nodes 5] [--runs N] [--bug ack-majority]`: runs the
 * fault-injection harness on real processes, prints the faults as they happen and the checks at
 * the end, and exits non-zero on any violation.
 */
import { flagHelp, parseFlags, type FlagSpec } from '../cli/args.js';
import { describeReport, faultKinds, runChaos } from './harness.js';

const specs: Record<string, FlagSpec> = {
  seconds: { type: 'int', help: 'length of one run under load and faults', min: 5, max: 3600, default: 60 },
  seed: { type: 'int', help: 'seed of the fault schedule and the workload (default: from the clock)', min: 0, max: 2 ** 31 },
  nodes: { type: 'int', help: 'cluster size', min: 3, max: 7, default: 3 },
  learner: { type: 'switch', help: 'add one more node as a learner (non-voting)' },
  clients: { type: 'int', help: 'concurrent clients', min: 1, max: 64, default: 6 },
  runs: { type: 'int', help: 'runs, with seeds seed, seed+1, …', min: 1, max: 1000, default: 1 },
  faults: { type: 'string', help: `only these fault kinds, comma-separated (${faultKinds.join(', ')})` },
  'pad-bytes': { type: 'int', help: 'bytes of padding after each written value (2048: snapshots outgrow one message and are staged in files)', min: 0, max: 1024 * 1024, default: 0 },
  'log-cache-mb': { type: 'int', help: "the nodes' --log-cache-mb (0: followers the faults set back are fed from the leader's disk)", min: 0, max: 1_000_000 },
  bug: { type: 'string', help: 'run the nodes with a planted bug (ack-majority, up-to-date, current-term, session, or diverge:ID for one replica dropping every 50th SET) to see the checks fail' },
  help: { type: 'switch', help: 'show this help' },
};

const values = parseFlags(process.argv.slice(2), specs);
if (values['help'] === true) {
  process.stdout.write(`npm run chaos -- [options]\n\n${flagHelp(specs)}\n`);
  process.exit(0);
}
for (const kind of ((values['faults'] as string | undefined) ?? '').split(',').filter((k) => k !== '')) {
  if (!(faultKinds as readonly string[]).includes(kind)) {
    process.stderr.write(`chaos: unknown fault '${kind}' (${faultKinds.join(', ')})\n`);
    process.exit(2);
  }
}
const first = (values['seed'] as number | undefined) ?? Date.now() % 1_000_000;
let failed = 0;
for (let run = 0; run < (values['runs'] as number); run++) {
  const seed = first + run;
  process.stdout.write(`chaos run: seed ${seed}, ${values['nodes']} nodes${values['learner'] === true ? ' and a learner' : ''}, ${values['seconds']} s (replay with --seed ${seed}${values['learner'] === true ? ' --learner' : ''})\n`);
  const report = await runChaos({
    seed,
    seconds: values['seconds'] as number,
    nodes: values['nodes'] as number,
    clients: values['clients'] as number,
    learner: values['learner'] === true,
    bug: (values['bug'] as string | undefined) ?? null,
    faults: values['faults'] === undefined ? undefined : (values['faults'] as string).split(','),
    padBytes: values['pad-bytes'] as number,
    ...(values['log-cache-mb'] === undefined ? {} : { logCacheMb: values['log-cache-mb'] as number }),
    log: (line) => process.stdout.write(`  ${line}\n`),
  });
  process.stdout.write(`${describeReport(report)}\n\n`);
  if (report.violations.length > 0) failed++;
}
if (failed > 0) process.stdout.write(`${failed} of ${values['runs']} runs found violations\n`);
process.exit(failed > 0 ? 1 : 0);
