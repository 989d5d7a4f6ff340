/**
 * The simulator's clock and event queue: events run in (time, insertion) order, so a run is a
 * pure function of its seed. Time is in simulated milliseconds.
 */
interface Event {
  readonly time: number;
  readonly seq: number;
  readonly fn: () => void;
}

export class Scheduler {
  private heap: Event[] = [];
  private seq = 0;
  private nowValue = 0;
  /** Events run so far (a measure of simulation work). */
  eventsRun = 0;

  get now(): number {
    return this.nowValue;
  }

  /** Runs `fn` after `delayMs` (0: after everything already queued for now). */
  after(delayMs: number, fn: () => void): void {
    this.push({ time: this.nowValue + Math.max(0, delayMs), seq: this.seq++, fn });
  }

  /** Runs events until the queue is empty, time passes `untilMs`, or `stop()` says so. */
  run(untilMs: number, stop: () => boolean = () => false): void {
    while (this.heap.length > 0) {
      const next = this.heap[0] as Event;
      if (next.time > untilMs) break;
      this.pop();
      this.nowValue = next.time;
      this.eventsRun++;
      next.fn();
      if (stop()) return;
    }
    if (this.nowValue < untilMs) this.nowValue = untilMs;
  }

  private less(a: Event, b: Event): boolean {
    return a.time < b.time || (a.time === b.time && a.seq < b.seq);
  }

  private push(event: Event): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(heap[i] as Event, heap[parent] as Event)) break;
      [heap[i], heap[parent]] = [heap[parent] as Event, heap[i] as Event];
      i = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop() as Event;
    if (heap.length === 0) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && this.less(heap[left] as Event, heap[smallest] as Event)) smallest = left;
      if (right < heap.length && this.less(heap[right] as Event, heap[smallest] as Event)) smallest = right;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest] as Event, heap[i] as Event];
      i = smallest;
    }
  }
}
