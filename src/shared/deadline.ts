/** What `within` resolves to when the time ran out first. */
export const timedOut = Symbol('timed out');

/** Resolves with `promise`'s value, or with `timedOut` after `ms`; the timer never outlives the race. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof timedOut> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(timedOut), Math.max(0, ms));
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
