/** Thrown when an invariant of the code itself is broken: a bug, never an environment problem. */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

/** Crash loudly when `condition` is false; for bugs only, never for bad input. */
export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Marks a branch that the type system proves unreachable. */
export function unreachable(value: never): never {
  throw new AssertionError(`unreachable: ${JSON.stringify(value)}`);
}
