import { existsSync, readFileSync } from 'node:fs';
import type { Entry, NodeId } from '../core/types.js';
import type { Engine, WriteResult } from '../engine/engine.js';
import { ErrorCode, TandemError } from '../shared/errors.js';
import { writeFileAtomicSync } from '../storage/files.js';

/** A member and where to reach it. */
export interface Member {
  readonly id: NodeId;
  /** The peer (replication) address. */
  readonly peer: string;
  readonly http: string | null;
  readonly resp: string | null;
}

/** One member as `GET /v1/members` shows it. */
export interface MemberView extends Member {
  readonly role: 'voter' | 'learner';
  /** On the leader: how far the member's log has come, and how far behind it is. */
  readonly matchIndex: number | null;
  readonly lagEntries: number | null;
}

/**
 * The address book of the cluster, kept in `members.json` in the data directory: the founding
 * members of --peers, and every member added since (learned from the membership entries of the
 * log), so a restarted node still knows where a member that joined later lives.
 */
export class AddressBook {
  private readonly members = new Map<NodeId, Member>();

  constructor(private readonly file: string) {
    if (!existsSync(file)) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new TandemError(ErrorCode.corrupt, `${file}: not a members file (${(error as Error).message})`, { file });
    }
    if (!Array.isArray(parsed)) throw new TandemError(ErrorCode.corrupt, `${file}: not a list of members`, { file });
    for (const member of parsed as Member[]) this.members.set(member.id, member);
  }

  get size(): number {
    return this.members.size;
  }

  all(): Member[] {
    return [...this.members.values()];
  }

  get(id: NodeId): Member | undefined {
    return this.members.get(id);
  }

  /** Adds or updates a member (fields given as null keep what is known); saves when anything changed. */
  set(member: Member): void {
    const known = this.members.get(member.id);
    const merged: Member = { id: member.id, peer: member.peer, http: member.http ?? known?.http ?? null, resp: member.resp ?? known?.resp ?? null };
    if (known !== undefined && JSON.stringify(known) === JSON.stringify(merged)) return;
    this.members.set(member.id, merged);
    this.save();
  }

  remove(id: NodeId): void {
    if (this.members.delete(id)) this.save();
  }

  private save(): void {
    writeFileAtomicSync(this.file, Buffer.from(`${JSON.stringify(this.all(), null, 2)}\n`));
  }
}

/** What the membership service needs of the peer transport. */
export interface PeerLinks {
  addPeer(id: NodeId, address: { host: string; port: number }): void;
  removePeer(id: NodeId): void;
}

/** Parses "host:port". */
export function hostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new TandemError(ErrorCode.badRequest, `'${address}' is not HOST:PORT`);
  return { host: address.slice(0, colon), port };
}

/**
 * Membership changes on a running cluster, one at a time: add a node as a learner (it joins with
 * its addresses, which travel in the membership entry so every node learns them), promote a
 * caught-up learner to voter, remove any member (the leader included: it hands over first).
 */
export class Membership {
  constructor(
    private readonly nodeId: NodeId,
    private readonly engine: Engine,
    private readonly book: AddressBook,
    private readonly links: PeerLinks,
    private readonly log: (event: string, fields: Record<string, unknown>) => void,
    /** Addresses peers told this node in their handshakes, for members the book has no address of. */
    private readonly heard: (id: NodeId) => { http: string | null; resp: string | null } = () => ({ http: null, resp: null }),
  ) {}

  /** Every member with its role, addresses and (on the leader) progress. */
  list(): { leader: NodeId | null; members: MemberView[] } {
    const raft = this.engine.raft;
    const progress = new Map(raft.followers().map((f) => [f.id, f.match]));
    const ids = [...raft.config.voters, ...raft.config.learners];
    const members = ids.map((id): MemberView => {
      const known = this.book.get(id);
      const match = id === this.nodeId && raft.role === 'leader' ? raft.lastIndex : (progress.get(id) ?? null);
      return {
        id,
        peer: known?.peer ?? '?',
        http: known?.http ?? this.heard(id).http,
        resp: known?.resp ?? this.heard(id).resp,
        role: raft.config.voters.includes(id) ? 'voter' : 'learner',
        matchIndex: raft.role === 'leader' ? match : null,
        lagEntries: raft.role === 'leader' && match !== null ? Math.max(0, raft.lastIndex - match) : null,
      };
    });
    return { leader: raft.leader, members };
  }

  /** On the leader: adds `member` as a learner; answers once a majority has the change. */
  async join(member: Member): Promise<{ leader: NodeId | null; members: MemberView[] }> {
    hostPort(member.peer);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(member.id)) throw new TandemError(ErrorCode.badRequest, `node id '${member.id}' may use only letters, digits, '_', '.', '-' (at most 64)`);
    const raft = this.engine.raft;
    const known = this.book.get(member.id);
    if ([...raft.config.voters, ...raft.config.learners].includes(member.id)) {
      if (known?.peer === member.peer) return this.list(); // a retried join
      throw new TandemError(ErrorCode.badRequest, `${member.id} is already a member, at ${known?.peer ?? 'another address'}`);
    }
    this.book.set(member);
    this.links.addPeer(member.id, hostPort(member.peer));
    await this.change({ type: 'addLearner', node: member.id }, Buffer.from(JSON.stringify({ add: member })));
    this.log('member added as a learner', { member: member.id, peer: member.peer });
    return this.list();
  }

  async promote(id: NodeId): Promise<void> {
    await this.change({ type: 'promote', node: id });
    this.log('learner promoted to voter', { member: id });
  }

  async remove(id: NodeId): Promise<void> {
    await this.change({ type: 'remove', node: id });
    this.log('member removed', { member: id });
  }

  private change(change: Parameters<Engine['changeMembership']>[0], data?: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.engine.changeMembership(change, (result: WriteResult) => (result.ok ? resolve() : reject(result.error)), data);
    });
  }

  /** Every node, on each applied membership entry: learns new addresses, forgets removed members. */
  applied(entry: Entry): void {
    if (entry.kind !== 'config' || entry.config === undefined) return;
    if (entry.data.length > 0) {
      try {
        const { add } = JSON.parse(Buffer.from(entry.data).toString()) as { add?: Member };
        if (add !== undefined) {
          this.book.set(add);
          this.links.addPeer(add.id, hostPort(add.peer));
        }
      } catch (error) {
        this.log('a membership entry carried addresses that could not be read', { index: entry.index, error: (error as Error).message });
      }
    }
    const members = new Set([...entry.config.voters, ...entry.config.learners]);
    for (const member of this.book.all()) {
      if (members.has(member.id) || member.id === this.nodeId) continue;
      this.book.remove(member.id);
      this.links.removePeer(member.id);
    }
  }
}
