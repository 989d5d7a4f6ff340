import { renameSync, readFileSync, writeFileSync } from 'node:fs';
import { FileStorage } from '../storage/file-storage.js';
import { decodeSnapshot } from '../storage/meta-files.js';
import { TandemError } from '../shared/errors.js';
import { flagHelp, parseFlags, UsageError, type FlagSpec } from './args.js';
import { call } from './kv-commands.js';
import { parsePeers } from './start.js';

const backupFlags: Record<string, FlagSpec> = {
  node: { type: 'string', help: "any node's HTTP address", default: '127.0.0.1:8001' },
  out: { type: 'string', help: 'the file to write' },
  'timeout-ms': { type: 'int', help: 'give up after this long', min: 1, max: 3_600_000, default: 600_000 },
  help: { type: 'switch', help: 'show this help' },
};

/** `tandem backup --node HOST:PORT --out FILE`: a consistent snapshot of the whole state. */
export async function backupCommand(argv: readonly string[]): Promise<number> {
  const v = parseFlags(argv, backupFlags);
  if (v['help'] === true) {
    process.stdout.write(`Usage: tandem backup --out FILE [--node HOST:PORT]\n\nA consistent copy of the whole state (every write acknowledged before it started), checksummed.\n\n${flagHelp(backupFlags)}\n`);
    return 0;
  }
  const out = v['out'] as string | undefined;
  if (out === undefined) throw new UsageError('--out FILE is required');
  const response = await call(v['node'] as string, 'GET', '/v1/backup', v['timeout-ms'] as number);
  if (!response.ok) throw new UsageError(`the node refused the backup: HTTP ${response.status} ${await response.text()}`);
  const bytes = Buffer.from(await response.arrayBuffer());
  const snapshot = decodeSnapshot(bytes, 'the backup received');
  writeFileSync(`${out}.partial`, bytes);
  renameSync(`${out}.partial`, out);
  process.stdout.write(`backup of index ${snapshot.meta.index} (term ${snapshot.meta.term}, digest ${response.headers.get('x-tandem-backup-digest') ?? '?'}): ${bytes.length} bytes in ${out}\n`);
  return 0;
}

const restoreFlags: Record<string, FlagSpec> = {
  in: { type: 'string', help: 'the backup file' },
  dir: { type: 'string', help: "the new node's data directory (must be empty)" },
  id: { type: 'string', help: "the new node's id" },
  peers: { type: 'string', help: 'every node of the new cluster: ID=HOST:PORT,… (as for tandem start)' },
  learners: { type: 'string', help: 'ids among --peers that are learners', default: '' },
  help: { type: 'switch', help: 'show this help' },
};

/** `tandem restore`: seeds one node of a new cluster from a backup (run it for every node). */
export function restoreCommand(argv: readonly string[]): number {
  const v = parseFlags(argv, restoreFlags);
  if (v['help'] === true) {
    process.stdout.write(`Usage: tandem restore --in FILE --dir DIR --id ID --peers ID=HOST:PORT,… [--learners IDS]\n\nSeeds an empty data directory from a backup. Run it once for every node of the new cluster,\nwith the --peers and --learners you will start them with; then start them.\n\n${flagHelp(restoreFlags)}\n`);
    return 0;
  }
  for (const required of ['in', 'dir', 'id', 'peers']) if (v[required] === undefined) throw new UsageError(`--${required} is required`);
  const peers = parsePeers(v['peers'] as string);
  const id = v['id'] as string;
  if (!peers.has(id)) throw new UsageError(`--id ${id} is not one of the ids in --peers`);
  const learners = (v['learners'] as string).split(',').filter((x) => x !== '');
  let bytes: Buffer;
  try {
    bytes = readFileSync(v['in'] as string);
  } catch (error) {
    throw new UsageError(`cannot read ${v['in'] as string}: ${(error as Error).message}`);
  }
  const snapshot = decodeSnapshot(bytes, v['in'] as string);
  const voters = [...peers.keys()].filter((peer) => !learners.includes(peer));
  try {
    FileStorage.seed(v['dir'] as string, { meta: { ...snapshot.meta, config: { voters, learners }, termStarts: [] }, data: snapshot.data });
  } catch (error) {
    if (error instanceof TandemError) throw new UsageError(error.message);
    throw error;
  }
  process.stdout.write(`node ${id}: ${v['dir'] as string} seeded with the state at index ${snapshot.meta.index} (term ${snapshot.meta.term}); start it with the same --peers\n`);
  return 0;
}
