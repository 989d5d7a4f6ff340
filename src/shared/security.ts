import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The node's security settings: a client password (Redis AUTH, and the HTTP bearer token), a
 * cluster secret that authenticates peer links, and TLS material for every link. Each is
 * optional; without them a node trusts its network, as Redis does by default.
 */
export interface Security {
  /** What RESP clients must AUTH with and HTTP clients send as `Authorization: Bearer …`. */
  readonly password: string | null;
  /** Shared by every node; proves a peer's handshake comes from a member of this cluster. */
  readonly clusterSecret: string | null;
  /** TLS for client and peer links: this node's key and certificate, and the CA that signs every node's. */
  readonly tls: TlsMaterial | null;
}

export interface TlsMaterial {
  readonly key: Buffer;
  readonly cert: Buffer;
  readonly ca: Buffer;
}

export const noSecurity: Security = { password: null, clusterSecret: null, tls: null };

/** Compares two secrets in constant time. */
export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** How far a peer's handshake clock may be from ours. */
const proofSkewMsMax = 60_000;

/** The proof a peer's handshake carries: an HMAC of who it is, whom it calls, when, and a nonce. */
export function peerProof(secret: string, clusterId: string, from: string, to: string, atMs: number, nonce: string): string {
  return createHmac('sha256', secret).update(`tandem-peer\u0000${clusterId}\u0000${from}\u0000${to}\u0000${atMs}\u0000${nonce}`).digest('hex');
}

/** A fresh nonce for a handshake. */
export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

/**
 * Checks a handshake's proof; returns the reason it fails, or null. A proof is good for one
 * minute and once (nonces seen are remembered for that long), so a recorded handshake cannot be
 * replayed later.
 */
export class ProofChecker {
  private readonly seen = new Map<string, number>();

  constructor(private readonly secret: string) {}

  check(clusterId: string, from: string, to: string, atMs: unknown, nonce: unknown, proof: unknown, nowMs: number): string | null {
    if (typeof atMs !== 'number' || typeof nonce !== 'string' || typeof proof !== 'string') return 'the handshake carries no cluster-secret proof';
    if (Math.abs(nowMs - atMs) > proofSkewMsMax) return 'the handshake proof is too old (or the clocks differ by more than a minute)';
    if (!sameSecret(proof, peerProof(this.secret, clusterId, from, to, atMs, nonce))) return 'the handshake proof does not match this cluster’s secret';
    for (const [old, at] of this.seen) if (nowMs - at > proofSkewMsMax) this.seen.delete(old);
    if (this.seen.has(nonce)) return 'the handshake was replayed';
    this.seen.set(nonce, nowMs);
    return null;
  }
}
