#!/usr/bin/env node
import { TandemError } from '../shared/errors.js';
import { UsageError } from './args.js';
import { backupCommand, restoreCommand } from './backup.js';
import { demoCommand } from './demo.js';
import { membersCommand } from './members.js';
import { kvCommand, statusCommand, switchoverCommand } from './kv-commands.js';
import { simCommand } from './sim.js';
import { startCommand } from './start.js';

const usage = `tandem: a leader-follower replicated key-value store

Commands:
  demo      start a local three-node cluster and keep it running until Ctrl-C
  start     run one node
  status    show every node of a cluster
  switchover  hand leadership to a follower without losing a write
  put       write a key            get   read a key            del   delete a key
  members   list, add, promote and remove members
  backup    copy the whole state of a running cluster to a file
  restore   seed a node of a new cluster from a backup
  sim       run the deterministic simulator over many seeds

Run 'tandem COMMAND --help' for a command's flags.
`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'sim':
      return simCommand(rest);
    case 'start':
      return startCommand(rest);
    case 'demo':
      return demoCommand(rest);
    case 'status':
      return statusCommand(rest);
    case 'switchover':
      return switchoverCommand(rest);
    case 'members':
      return membersCommand(rest);
    case 'backup':
      return backupCommand(rest);
    case 'restore':
      return restoreCommand(rest);
    case 'put':
    case 'get':
    case 'del':
      return kvCommand(command, rest);
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
    } else if (isSystemError(error)) {
      // A broken environment (port taken, directory not writable, …): say what and where, no stack.
      process.stderr.write(`tandem: ${environmentMessage(error)}\n`);
      process.exitCode = 1;
    } else {
      throw error;
    }
  },
);

interface SystemError extends Error {
  code: string;
  syscall?: string;
  address?: string;
  port?: number;
  path?: string;
}

function isSystemError(error: unknown): error is SystemError {
  return error instanceof Error && typeof (error as Partial<SystemError>).code === 'string' && typeof (error as Partial<SystemError>).syscall === 'string';
}

function environmentMessage(error: SystemError): string {
  if (error.code === 'EADDRINUSE') return `cannot listen on ${error.address ?? ''}:${error.port ?? ''}: the address is already in use (another node or program has it)`;
  if (error.code === 'EACCES' || error.code === 'EPERM') return `permission denied: ${error.syscall} ${error.path ?? `${error.address ?? ''}:${error.port ?? ''}`}`;
  if (error.code === 'ENOSPC') return `no space left on the device (${error.syscall} ${error.path ?? ''})`;
  return `${error.code}: ${error.message}`;
}
