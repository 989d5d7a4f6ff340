import fc from 'fast-check';
import type { Operation } from '../../src/kv/commands.js';

/**
 * Every kind of state-machine write over the given keys and values, for property tests: the
 * kinds in a fixed order (so a seed draws the same cases), then any `more`.
 */
export function anyOperation(key: fc.Arbitrary<string>, value: fc.Arbitrary<Buffer>, more: readonly fc.Arbitrary<Operation>[] = []): fc.Arbitrary<Operation> {
  return fc.oneof(
    fc.record({ op: fc.constant('put' as const), key, value }),
    fc.record({ op: fc.constant('del' as const), key }),
    fc.record({ op: fc.constant('set' as const), key, value, when: fc.constantFrom('always' as const, 'nx' as const, 'xx' as const), returnPrevious: fc.boolean() }),
    fc.record({ op: fc.constant('mset' as const), pairs: fc.array(fc.tuple(key, value), { maxLength: 3 }) }),
    fc.record({ op: fc.constant('delKeys' as const), keys: fc.array(key, { maxLength: 3 }) }),
    fc.record({ op: fc.constant('cas' as const), key, expected: fc.option(value), value: fc.option(value) }),
    fc.record({ op: fc.constant('append' as const), key, value }),
    fc.record({ op: fc.constant('getdel' as const), key }),
    fc.constant({ op: 'flushall' as const }),
    ...more,
  );
}
