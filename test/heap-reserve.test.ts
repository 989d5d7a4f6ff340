import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { getHeapStatistics } from 'node:v8';
import { heapReserveBytes, reserveHeap, setHeapGrowth } from '../src/cli/heap-reserve.js';

/**
 * In a process of its own (V8's flags are the process's): sets the heap growth, holds a 128 MiB
 * reserve, collects in full, then keeps allocating objects it holds on to, and returns by how
 * many bytes the heap grew before V8 started its first full collection.
 */
function growthBeforeFullCollection(percent: number): { readonly live: number; readonly grew: number } {
  const script = `
    import { PerformanceObserver } from 'node:perf_hooks';
    import { getHeapStatistics } from 'node:v8';
    const { reserveHeap, setHeapGrowth } = await import(${JSON.stringify(new URL('../src/cli/heap-reserve.js', import.meta.url).href)});
    setHeapGrowth(${percent});
    reserveHeap(128);
    globalThis.gc();
    const live = getHeapStatistics().used_heap_size;
    let full = 0;
    new PerformanceObserver((list) => { for (const e of list.getEntries()) if (e.detail.kind !== 1) full++; }).observe({ entryTypes: ['gc'] });
    const kept = [];
    let grew = -1;
    for (let i = 0; i < 4000 && grew < 0; i++) {
      const before = getHeapStatistics().used_heap_size;
      for (let j = 0; j < 8; j++) kept.push(Array.from({ length: 8192 }, (_, k) => ({ k })));
      await new Promise((resolve) => setImmediate(resolve));
      if (full > 0) grew = before - live;
    }
    process.stdout.write(JSON.stringify({ live, grew }));`;
  return JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 })) as { live: number; grew: number };
}

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

  it('lets the old generation grow by the given share of its live size before a full collection', () => {
    const wide = growthBeforeFullCollection(100);
    const narrow = growthBeforeFullCollection(10);
    const mib = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MiB`;
    assert.ok(wide.grew >= 0.75 * wide.live, `at 100%: grew ${mib(wide.grew)} over ${mib(wide.live)} live before the first full collection`);
    assert.ok(narrow.grew >= 0 && narrow.grew < 0.25 * narrow.live, `at 10%: grew ${mib(narrow.grew)} over ${mib(narrow.live)} live`);
    assert.throws(() => setHeapGrowth(-5), /whole number of percent, not -5/);
    assert.throws(() => setHeapGrowth(2.5), /whole number of percent, not 2.5/);
  });
});
