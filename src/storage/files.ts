import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Small durable-file helpers. A file replaced "atomically" is written to a temporary name,
 * fsynced, renamed over the old one, and the directory fsynced, so a crash leaves either the old
 * or the new contents, never a mix.
 */

/** fsyncs a directory, so a rename or a new file in it survives a crash. */
export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces `path` with `bytes` atomically (synchronous: for start-up and tests). */
export function writeFileAtomicSync(path: string, bytes: Uint8Array): void {
  const temp = `${path}.tmp`;
  const fd = openSync(temp, 'w');
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  fsyncDirSync(dirname(path));
}

/** Replaces `path` with `bytes` atomically, off the event loop. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | readonly Uint8Array[]): Promise<void> {
  const temp = `${path}.tmp`;
  const handle = await open(temp, 'w');
  try {
    if (bytes instanceof Uint8Array) await handle.write(bytes);
    else await handle.writev(bytes.map((part) => Buffer.from(part.buffer, part.byteOffset, part.byteLength)));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  await fsyncDir(dirname(path));
}

/** fsyncs a directory, off the event loop. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
