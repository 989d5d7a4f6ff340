import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getHeapStatistics } from 'node:v8';
import { heapReserveBytes, reserveHeap } from '../src/cli/heap-reserve.js';

describe('the heap reserve', () => {
  it("holds the block on V8's heap, as one flat string (not a rope, not outside the heap)", () => {
    const externalBefore = process.memoryUsage().external;
    const grew = reserveHeap(16);
    assert.ok(grew >= 16 * 1024 * 1024, `V8's heap grew by ${grew} bytes`);
    assert.equal(heapReserveBytes(), 16 * 1024 * 1024);
    assert.ok(process.memoryUsage().external - externalBefore < 1024 * 1024, 'not outside the heap');
    // Held: a full collection leaves it (when the test runner exposes gc; otherwise the heap is simply read again).
    (globalThis as { gc?: () => void }).gc?.();
    assert.ok(getHeapStatistics().used_heap_size >= 16 * 1024 * 1024);
  });

  it('is let go with 0, and refuses a size that is not a whole number of MiB', () => {
    reserveHeap(1);
    assert.equal(heapReserveBytes(), 1024 * 1024);
    assert.equal(reserveHeap(0), 0);
    assert.equal(heapReserveBytes(), 0);
    assert.throws(() => reserveHeap(-1), /whole number of MiB, not -1/);
    assert.throws(() => reserveHeap(1.5), /whole number of MiB, not 1.5/);
  });
});
