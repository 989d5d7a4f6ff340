import { readFileSync } from 'node:fs';
import { httpFetch } from '../net/http-call.js';
import { TandemClient, TandemClientError, type ReadConsistency, type WriteAck } from '../client/client.js';
import type { NodeStatus } from '../server/status.js';
import { flagHelp, parseArgs, parseFlags, UsageError, type FlagSpec } from './args.js';

/**
 * `tandem put|get|del`: over the TypeScript client (leader discovery, exactly-once retries);
 * `tandem status` and `tandem switchover`: over a node's HTTP API.
 */

const common: Record<string, FlagSpec> = {
  node: { type: 'string', help: "any node's HTTP address", default: '127.0.0.1:8001' },
  'timeout-ms': { type: 'int', help: 'give up after this long', min: 1, max: 600_000, default: 10_000 },
  help: { type: 'switch', help: 'show this help' },
};
const kvCommon: Record<string, FlagSpec> = {
  seeds: { type: 'string', help: 'RESP addresses of any nodes, comma-separated', default: '127.0.0.1:6380,127.0.0.1:6381,127.0.0.1:6382' },
  'timeout-ms': common['timeout-ms'] as FlagSpec,
  help: common['help'] as FlagSpec,
};
const putFlags: Record<string, FlagSpec> = { ...kvCommon, ack: { type: 'string', help: 'leader | majority | all | N (default: the node’s)' } };
const getFlags: Record<string, FlagSpec> = { ...kvCommon, consistency: { type: 'string', help: 'linearizable | session | after:<index> | bounded:<ms> | stale', default: 'linearizable' } };

/** The client password (TANDEM_PASSWORD) and the CA to trust for TLS (a PEM file named by TANDEM_CA). */
export function clientSecurity(): { token: string | null; ca: Buffer | null } {
  const caFile = process.env['TANDEM_CA'];
  let ca: Buffer | null = null;
  if (caFile !== undefined && caFile !== '') {
    try {
      ca = readFileSync(caFile);
    } catch (error) {
      throw new UsageError(`TANDEM_CA: cannot read ${caFile}: ${(error as Error).message}`);
    }
  }
  return { token: process.env['TANDEM_PASSWORD'] ?? null, ca };
}

/** One request to a node's HTTP API (HTTPS when TANDEM_CA is set), as a fetch Response. */
export async function call(node: string, method: string, path: string, timeoutMs: number, body?: string): Promise<Response> {
  try {
    return await httpFetch(node, method, path, { ...clientSecurity(), timeoutMs, body });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

async function failWith(response: Response): Promise<number> {
  const text = await response.text();
  try {
    const { error } = JSON.parse(text) as { error: { code: string; message: string } };
    process.stderr.write(`tandem: ${error.code}: ${error.message}\n`);
  } catch {
    process.stderr.write(`tandem: HTTP ${response.status}: ${text}\n`);
  }
  return 1;
}

/** `tandem put KEY VALUE`, `tandem get KEY`, `tandem del KEY`. */
export async function kvCommand(command: 'put' | 'get' | 'del', argv: readonly string[]): Promise<number> {
  const specs = command === 'put' ? putFlags : command === 'get' ? getFlags : kvCommon;
  const { values, args } = parseArgs(argv, specs, command === 'put' ? 2 : 1);
  if (values['help'] === true) {
    process.stdout.write(`Usage: tandem ${command} ${command === 'put' ? 'KEY VALUE' : 'KEY'} [--seeds HOST:PORT,…]\n\n${flagHelp(specs)}\n`);
    return 0;
  }
  const [key, value] = args;
  if (key === undefined || (command === 'put' && value === undefined)) throw new UsageError(`tandem ${command} needs ${command === 'put' ? 'KEY VALUE' : 'KEY'}`);
  const seeds = (values['seeds'] as string).split(',').filter((s) => s !== '');
  const { token, ca } = clientSecurity();
  const client = new TandemClient({ seeds, timeoutMs: values['timeout-ms'] as number, password: token ?? undefined, tls: ca === null ? undefined : { ca } });
  try {
    if (command === 'get') {
      const found = await client.get(key, { consistency: values['consistency'] as ReadConsistency });
      if (found === null) {
        process.stderr.write(`tandem: ${key}: no such key\n`);
        return 1;
      }
      process.stdout.write(found);
      if (process.stdout.isTTY) process.stdout.write('\n');
      return 0;
    }
    const ack = values['ack'] === undefined ? undefined : parseAckFlag(values['ack'] as string);
    if (command === 'put') {
      const result = await client.set(key, value as string, { ack });
      process.stdout.write(`OK index ${result.index}\n`);
    } else {
      const result = await client.del(key, { ack });
      process.stdout.write(`deleted ${result.value} (index ${result.index})\n`);
    }
    return 0;
  } catch (error) {
    if (!(error instanceof TandemClientError)) throw error;
    process.stderr.write(`tandem: ${error.code}: ${error.message}\n`);
    return 1;
  } finally {
    client.close();
  }
}

function parseAckFlag(text: string): WriteAck {
  if (text === 'leader' || text === 'majority' || text === 'all') return text;
  const n = Number(text);
  if (Number.isInteger(n) && n >= 1) return n;
  throw new UsageError(`--ack must be leader, majority, all or a number of voters, not '${text}'`);
}

/** `tandem status`: a table of every node, asked of each node in turn. */
export async function statusCommand(argv: readonly string[]): Promise<number> {
  const values = parseFlags(argv, common);
  if (values['help'] === true) {
    process.stdout.write(`Usage: tandem status [--node HOST:PORT]\n\n${flagHelp(common)}\n`);
    return 0;
  }
  const timeoutMs = values['timeout-ms'] as number;
  const first = (await (await call(values['node'] as string, 'GET', '/v1/status', timeoutMs)).json()) as NodeStatus;
  const rows: string[][] = [['node', 'http', 'role', 'term', 'leader', 'last', 'commit', 'applied', 'lag']];
  const lagOf = new Map<string, string>();
  for (const member of first.members) {
    let status: NodeStatus | null = null;
    if (member.httpAddress !== null) {
      try {
        status = (await (await call(member.httpAddress, 'GET', '/v1/status', Math.min(timeoutMs, 2000))).json()) as NodeStatus;
      } catch {
        status = null;
      }
    }
    if (status?.role === 'leader') for (const f of status.followers) lagOf.set(f.id, `${f.lagEntries} entries / ${f.lagMs} ms`);
    rows.push(
      status === null
        ? [member.id, member.httpAddress ?? '?', 'unreachable', '', '', '', '', '', '']
        : [status.id, member.httpAddress ?? '?', status.role, String(status.term), status.leader ?? '-', String(status.lastIndex), String(status.commitIndex), String(status.appliedIndex), ''],
    );
  }
  for (const row of rows.slice(1)) row[8] = lagOf.get(row[0] as string) ?? (row[2] === 'leader' ? '-' : '?');
  const widths = (rows[0] as string[]).map((_, c) => Math.max(...rows.map((r) => (r[c] as string).length)));
  for (const row of rows) process.stdout.write(`${row.map((cell, c) => cell.padEnd(widths[c] as number)).join('  ')}\n`);
  return 0;
}

const switchoverFlags: Record<string, FlagSpec> = { ...common, to: { type: 'string', help: 'the follower to hand leadership to (default: the most up-to-date voter)' } };

/** `tandem switchover [--to ID]`: hands leadership over without losing a write; prints the pause. */
export async function switchoverCommand(argv: readonly string[]): Promise<number> {
  const values = parseFlags(argv, switchoverFlags);
  if (values['help'] === true) {
    process.stdout.write(`Usage: tandem switchover [--to ID] [--node HOST:PORT]\n\n${flagHelp(switchoverFlags)}\n`);
    return 0;
  }
  const to = values['to'] === undefined ? '' : `?to=${encodeURIComponent(values['to'] as string)}`;
  const response = await call(values['node'] as string, 'POST', `/v1/switchover${to}`, values['timeout-ms'] as number);
  if (!response.ok) return failWith(response);
  const result = (await response.json()) as { from: string; to: string; pauseMs: number; term?: number };
  process.stdout.write(`leadership moved from ${result.from} to ${result.to}${result.term === undefined ? '' : ` (term ${result.term})`}; writes paused ${result.pauseMs} ms\n`);
  return 0;
}
