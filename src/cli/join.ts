import { existsSync, mkdirSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import type { ClusterConfig } from '../core/types.js';
import { httpCall } from '../net/http-call.js';
import { AddressBook, hostPort, type MemberView } from '../server/membership.js';
import { UsageError } from './args.js';
import type { Logger } from './log.js';
import { advertisedHost, type NodeConfig } from './node.js';

/** How long a new member keeps asking to be let in. */
const joinTimeoutMs = 60_000;

/**
 * `tandem start --join HOST:PORT`: asks the cluster (through any member, which forwards to the
 * leader) to add this node as a learner with its addresses, then starts from the configuration
 * and address book the leader answered. A node that joined before (members.json is in its data
 * directory) just starts again.
 */
export async function joinIfAsked(config: NodeConfig, log: Logger): Promise<NodeConfig> {
  if (config.join === null) return config;
  const bookFile = joinPath(config.dir, 'members.json');
  const self = config.peers.get(config.id);
  if (self === undefined) throw new UsageError('--peer-address is required with --join');
  if (existsSync(bookFile)) {
    const book = new AddressBook(bookFile);
    log('info', 'already joined; starting with the members known', { members: book.all().map((m) => m.id) });
    return { ...config, peers: new Map(book.all().map((m) => [m.id, hostPort(m.peer)])) };
  }
  const host = advertisedHost(config);
  const request = { id: config.id, peer: `${self.host}:${self.port}`, http: `${host}:${config.httpPort}`, resp: config.respPort === 0 ? null : `${host}:${config.respPort}` };
  const deadline = performance.now() + joinTimeoutMs;
  let last = '';
  while (performance.now() < deadline) {
    try {
      const answer = await httpCall(config.join, 'POST', '/v1/members/join', { timeoutMs: 10_000, token: config.security.password, ca: config.security.tls?.ca ?? null, body: JSON.stringify(request) });
      const body = JSON.parse(answer.body.toString()) as { clusterId?: string; members?: MemberView[]; error?: { code: string; message: string } };
      if (answer.status === 200 && body.members !== undefined) {
        if (body.clusterId !== config.clusterId) throw new UsageError(`the cluster at ${config.join} is '${body.clusterId}', not --cluster-id '${config.clusterId}'`);
        mkdirSync(config.dir, { recursive: true });
        const book = new AddressBook(bookFile);
        for (const member of body.members) book.set({ id: member.id, peer: member.peer, http: member.http, resp: member.resp });
        const bootstrap: ClusterConfig = { voters: body.members.filter((m) => m.role === 'voter').map((m) => m.id), learners: body.members.filter((m) => m.role === 'learner').map((m) => m.id) };
        log('info', 'joined the cluster as a learner', { through: config.join, voters: bootstrap.voters, learners: bootstrap.learners });
        return { ...config, bootstrap, peers: new Map(book.all().map((m) => [m.id, hostPort(m.peer)])) };
      }
      last = body.error === undefined ? `HTTP ${answer.status}` : `${body.error.code}: ${body.error.message}`;
      if (body.error?.code === 'BAD_REQUEST' || answer.status === 401) throw new UsageError(`the cluster refused to let ${config.id} join: ${last}`);
    } catch (error) {
      if (error instanceof UsageError) throw error;
      last = (error as Error).message;
    }
    log('info', 'waiting to join', { through: config.join, last });
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new UsageError(`could not join through ${config.join} within ${joinTimeoutMs / 1000} s: ${last}`);
}
