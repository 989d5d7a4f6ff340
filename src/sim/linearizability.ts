/**
 * A linearizability checker for histories of concurrent operations, after Wing & Gong with
 * Lowe's memoization (the approach of Porcupine and Knossos): search for an order of the
 * operations that respects real time and the sequential model, caching every (set of
 * linearized operations, model state) already explored. Histories are partitioned (per key)
 * first, since a key-value store is a set of independent registers.
 */

/** One completed or pending operation. `ret` is Infinity when the outcome is unknown. */
export interface HistoryOp<I, O> {
  readonly id: number;
  readonly call: number;
  readonly ret: number;
  readonly input: I;
  /** undefined when the outcome is unknown (the operation may or may not have taken effect). */
  readonly output: O | undefined;
}

/** A sequential specification. `step` says whether `output` is possible and what state follows. */
export interface Model<S, I, O> {
  init(): S;
  step(state: S, input: I, output: O | undefined): { ok: boolean; state: S };
  /** A string that is equal for equal states (for the cache). */
  key(state: S): string;
}

/** The verdict: linearizable, not, or gave up after `stepsMax` search steps. */
export type CheckResult = { readonly result: 'ok' } | { readonly result: 'violation'; readonly linearizedMax: number } | { readonly result: 'unknown' };

interface Node<I, O> {
  readonly op: HistoryOp<I, O> | null;
  readonly isCall: boolean;
  /** For a call node, its return node. */
  match: Node<I, O> | null;
  prev: Node<I, O> | null;
  next: Node<I, O> | null;
  /** Dense position of the operation, for the bitset. */
  readonly slot: number;
}

/** Checks one partition of a history against `model`. */
export function checkHistory<S, I, O>(model: Model<S, I, O>, ops: readonly HistoryOp<I, O>[], stepsMax = 5_000_000): CheckResult {
  if (ops.length === 0) return { result: 'ok' };
  const events: { time: number; isCall: boolean; slot: number }[] = [];
  ops.forEach((op, slot) => {
    events.push({ time: op.call, isCall: true, slot });
    events.push({ time: op.ret, isCall: false, slot });
  });
  // At equal times calls come first, so touching operations count as concurrent.
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.slot - b.slot : a.isCall ? -1 : 1));

  const head: Node<I, O> = { op: null, isCall: false, match: null, prev: null, next: null, slot: -1 };
  const calls = new Map<number, Node<I, O>>();
  let tail = head;
  for (const event of events) {
    const node: Node<I, O> = { op: ops[event.slot] as HistoryOp<I, O>, isCall: event.isCall, match: null, prev: tail, next: null, slot: event.slot };
    if (event.isCall) calls.set(event.slot, node);
    else (calls.get(event.slot) as Node<I, O>).match = node;
    tail.next = node;
    tail = node;
  }

  const words = new Uint32Array(Math.ceil(ops.length / 32));
  const cache = new Set<string>();
  const stack: { node: Node<I, O>; state: S }[] = [];
  let state = model.init();
  let entry = head.next;
  let steps = 0;
  let linearizedMax = 0;
  while (head.next !== null) {
    if (++steps > stepsMax) return { result: 'unknown' };
    if (entry === null) return { result: 'violation', linearizedMax };
    if (entry.isCall) {
      const op = entry.op as HistoryOp<I, O>;
      const next = model.step(state, op.input, op.output);
      if (next.ok) {
        setBit(words, entry.slot, true);
        const key = `${words.join(',')}|${model.key(next.state)}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ node: entry, state });
          linearizedMax = Math.max(linearizedMax, stack.length);
          state = next.state;
          lift(entry);
          entry = head.next;
          continue;
        }
        setBit(words, entry.slot, false);
      }
      entry = entry.next;
      continue;
    }
    // A return was reached with its call not linearized: undo the latest choice.
    const top = stack.pop();
    if (top === undefined) return { result: 'violation', linearizedMax };
    state = top.state;
    setBit(words, top.node.slot, false);
    unlift(top.node);
    entry = top.node.next;
  }
  return { result: 'ok' };
}

function setBit(words: Uint32Array, slot: number, on: boolean): void {
  const word = slot >>> 5;
  const mask = 1 << (slot & 31);
  words[word] = on ? (words[word] as number) | mask : (words[word] as number) & ~mask;
}

/** Removes a call and its return from the list. */
function lift<I, O>(call: Node<I, O>): void {
  call.prev!.next = call.next;
  if (call.next !== null) call.next.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Puts a lifted call and its return back where they were. */
function unlift<I, O>(call: Node<I, O>): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next !== null) call.next.prev = call;
}

/** Inputs of the key-value register model. */
export type RegisterInput =
  | { readonly op: 'put'; readonly value: string }
  | { readonly op: 'get' }
  | { readonly op: 'del' }
  | { readonly op: 'cas'; readonly expected: string | null; readonly value: string | null };

/** Outputs: a read's value, a delete's count, a compare-and-set's outcome; null for put. */
export type RegisterOutput = string | null | number | boolean;

/** One key of the store as a register whose value may be absent (null). */
export const registerModel: Model<string | null, RegisterInput, RegisterOutput> = {
  init: () => null,
  key: (state) => (state === null ? '\u0000' : `=${state}`),
  step(state, input, output) {
    switch (input.op) {
      case 'put':
        return { ok: true, state: input.value };
      case 'get':
        return { ok: output === undefined || output === state, state };
      case 'del':
        return { ok: output === undefined || output === (state === null ? 0 : 1), state: null };
      case 'cas': {
        const swapped = state === input.expected;
        return { ok: output === undefined || output === swapped, state: swapped ? input.value : state };
      }
    }
  },
};

/** Checks a key-value history by partitioning it per key. Returns the keys that failed or were undecided. */
export function checkKeyValueHistory(
  ops: readonly (HistoryOp<RegisterInput, RegisterOutput> & { readonly key: string })[],
  stepsMax?: number,
): { violations: string[]; unknown: string[] } {
  const byKey = new Map<string, HistoryOp<RegisterInput, RegisterOutput>[]>();
  for (const op of ops) {
    const list = byKey.get(op.key) ?? [];
    list.push(op);
    byKey.set(op.key, list);
  }
  const violations: string[] = [];
  const unknown: string[] = [];
  for (const [key, list] of byKey) {
    const verdict = checkHistory(registerModel, list, stepsMax);
    if (verdict.result === 'violation') violations.push(key);
    else if (verdict.result === 'unknown') unknown.push(key);
  }
  return { violations, unknown };
}
