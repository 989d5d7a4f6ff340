#!/usr/bin/env node
import { TandemError } from '../shared/errors.js';
import { UsageError } from './args.js';
import { simCommand } from './sim.js';

const usage = `tandem: a leader-follower replicated key-value store

Commands:
  sim       run the deterministic simulator over many seeds (tandem sim --help)

Run 'tandem COMMAND --help' for a command's flags.
`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'sim':
      return simCommand(rest);
    case undefined:
    case '--help':
    case 'help':
      process.stdout.write(usage);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`tandem: ${error.message}\nRun 'tandem --help' for usage.\n`);
      process.exitCode = 2;
    } else if (error instanceof TandemError) {
      process.stderr.write(`tandem: ${error.code}: ${error.message}\n`);
      process.exitCode = 1;
    } else {
      throw error;
    }
  },
);
