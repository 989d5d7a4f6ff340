import type { MemberView } from '../server/membership.js';
import type { NodeStatus } from '../server/status.js';
import { flagHelp, parseArgs, UsageError, type FlagSpec } from './args.js';
import { call } from './kv-commands.js';
import { progressBar } from './log.js';

const flags: Record<string, FlagSpec> = {
  node: { type: 'string', help: "any member's HTTP address", default: '127.0.0.1:8001' },
  peer: { type: 'string', help: 'add: the new member’s peer address HOST:PORT' },
  http: { type: 'string', help: 'add: its HTTP address' },
  resp: { type: 'string', help: 'add: its RESP address' },
  'timeout-ms': { type: 'int', help: 'give up after this long (promote waits for the learner to catch up)', min: 1, max: 3_600_000, default: 300_000 },
  help: { type: 'switch', help: 'show this help' },
};

const usage = `Usage: tandem members list
       tandem members add ID --peer HOST:PORT [--http HOST:PORT] [--resp HOST:PORT]
       tandem members promote ID      (waits until the learner has caught up, showing progress)
       tandem members remove ID       (any member, the leader included)

A new node usually adds itself: start it with --join HOST:PORT (any member's HTTP address) and
--peer-address; it joins as a learner. One change at a time; each answers once a majority has it.

${flagHelp(flags)}
`;

async function json<T>(response: Response): Promise<T> {
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try {
      const { error } = JSON.parse(text) as { error: { code: string; message: string } };
      message = `${error.code}: ${error.message}`;
    } catch {
      // not JSON: show it as it is
    }
    throw new UsageError(message);
  }
  return JSON.parse(text) as T;
}

function table(members: readonly MemberView[]): string {
  const rows = [['id', 'role', 'peer', 'http', 'resp', 'match', 'lag'], ...members.map((m) => [m.id, m.role, m.peer, m.http ?? '?', m.resp ?? '?', m.matchIndex === null ? '' : String(m.matchIndex), m.lagEntries === null ? '' : String(m.lagEntries)])];
  const widths = (rows[0] as string[]).map((_, c) => Math.max(...rows.map((r) => (r[c] as string).length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c] as number)).join('  ')).join('\n');
}

/** `tandem members list|add|promote|remove`. */
export async function membersCommand(argv: readonly string[]): Promise<number> {
  const { values, args } = parseArgs(argv, flags, 2);
  if (values['help'] === true || args.length === 0) {
    process.stdout.write(usage);
    return values['help'] === true ? 0 : 2;
  }
  const [action, id] = args;
  const node = values['node'] as string;
  const timeoutMs = values['timeout-ms'] as number;
  const need = (): string => {
    if (id === undefined) throw new UsageError(`tandem members ${action} needs the member's ID`);
    return id;
  };
  switch (action) {
    case 'list': {
      const status = await json<NodeStatus>(await call(node, 'GET', '/v1/status', 5000));
      const from = status.leaderHttpAddress ?? node;
      const { members } = await json<{ members: MemberView[] }>(await call(from, 'GET', '/v1/members', 5000));
      process.stdout.write(`${table(members)}\n`);
      return 0;
    }
    case 'add': {
      if (values['peer'] === undefined) throw new UsageError('tandem members add needs --peer HOST:PORT');
      const body = JSON.stringify({ id: need(), peer: values['peer'], http: values['http'] ?? null, resp: values['resp'] ?? null });
      const { members } = await json<{ members: MemberView[] }>(await call(node, 'POST', '/v1/members/join', timeoutMs, body));
      process.stdout.write(`${need()} added as a learner\n${table(members)}\n`);
      return 0;
    }
    case 'promote':
      return promote(node, need(), timeoutMs);
    case 'remove': {
      const { members } = await json<{ members: MemberView[] }>(await call(node, 'POST', `/v1/members/remove?id=${encodeURIComponent(need())}`, timeoutMs));
      process.stdout.write(`${need()} removed\n${table(members)}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown members action '${action}' (list, add, promote, remove)`);
  }
}

/** Waits until the learner holds every entry (printing its progress), then promotes it. */
async function promote(node: string, id: string, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let lastShown = '';
  while (performance.now() < deadline) {
    const status = await json<NodeStatus>(await call(node, 'GET', '/v1/status', 5000));
    const leader = status.leaderHttpAddress;
    if (leader !== null) {
      const { members } = await json<{ members: MemberView[] }>(await call(leader, 'GET', '/v1/members', 5000));
      const learner = members.find((m) => m.id === id);
      if (learner === undefined) throw new UsageError(`${id} is not a member`);
      if (learner.role === 'voter') {
        process.stdout.write(`${id} is a voter\n`);
        return 0;
      }
      const have = learner.matchIndex ?? 0;
      const behind = learner.lagEntries ?? 0;
      const bar = process.stdout.isTTY ? `${progressBar(have + behind === 0 ? 100 : (100 * have) / (have + behind))} ` : '';
      const line = `${bar}${id}: ${have} entries, ${learner.lagEntries ?? '?'} behind`;
      if (line !== lastShown) process.stdout.write(`${process.stdout.isTTY ? '\r' : ''}${line}${process.stdout.isTTY ? '   ' : '\n'}`);
      lastShown = line;
      if (learner.lagEntries === 0) {
        const answer = await call(leader, 'POST', `/v1/members/promote?id=${encodeURIComponent(id)}`, 10_000);
        if (answer.ok) {
          process.stdout.write(`${process.stdout.isTTY ? '\n' : ''}${id} promoted to voter\n`);
          return 0;
        }
        const text = await answer.text();
        if (!/not caught up/.test(text)) return json(answer);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new UsageError(`${id} did not catch up within ${timeoutMs} ms`);
}
