import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lineChart } from '../src/bench/svg.js';

describe('the benchmark charts', () => {
  it('draws one line per series with its points, a legend and escaped text', () => {
    const svg = lineChart({
      title: 'A <title> & more',
      xLabel: 'ops/s',
      yLabel: 'ms',
      series: [
        { name: 'Tandem', points: [[1000, 1], [5000, 2], [9000, 10]], labels: ['1', '16', '128'] },
        { name: 'Redis <always>', points: [[2000, 0.4], [40000, 2]] },
      ],
      logY: true,
    });
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.equal((svg.match(/<polyline /g) ?? []).length, 2);
    assert.equal((svg.match(/<circle /g) ?? []).length, 5);
    assert.match(svg, /A &lt;title&gt; &amp; more/);
    assert.match(svg, /Redis &lt;always&gt;/);
    assert.ok(!svg.includes('NaN'), 'no coordinate is NaN');
    // A log axis from 0.1 to 10 ms: ticks at 0.1, 1 and 10.
    for (const tick of ['>0.1<', '>1<', '>10<']) assert.ok(svg.includes(tick), `tick ${tick}`);
    // Points further right have a larger x.
    const xs = [...svg.matchAll(/<circle cx="([\d.]+)"/g)].slice(0, 3).map((m) => Number(m[1]));
    assert.ok((xs[0] as number) < (xs[1] as number) && (xs[1] as number) < (xs[2] as number));
  });

  it('leaves out points a log axis cannot show instead of drawing NaN', () => {
    const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's', points: [[1, 0], [2, 5], [3, Number.NaN]] }], logY: true });
    assert.equal((svg.match(/<circle /g) ?? []).length, 1);
    assert.ok(!svg.includes('NaN'));
  });
});
