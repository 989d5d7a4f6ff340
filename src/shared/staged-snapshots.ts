/**
 * The names of the files a transport writes a snapshot to as it arrives (in the node's snapshots
 * directory): one per stream, removed once installed or given up, and at start if left over.
 */
export const stagedSnapshotPattern = /^incoming-.+\.part$/;

/** A staged snapshot's file name: the peer it came from, this process and a counter. */
export function stagedSnapshotName(peer: string, pid: number, serial: number): string {
  return `incoming-${peer.replace(/[^\w.-]/g, '_')}-${pid}-${serial}.part`;
}
