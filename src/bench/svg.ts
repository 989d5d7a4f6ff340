/** A small SVG line chart for the benchmark reports: no dependencies, readable in a browser or on GitHub. */

export interface Series {
  readonly name: string;
  /** [x, y] points, drawn in the order given. */
  readonly points: readonly (readonly [number, number])[];
  /** Labels drawn beside each point (e.g. the client count), or none. */
  readonly labels?: readonly string[];
}

export interface Chart {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  /** A logarithmic y axis (latencies spanning orders of magnitude). */
  readonly logY?: boolean;
}

const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const width = 760;
const height = 440;
const margin = { left: 70, right: 190, top: 40, bottom: 55 };

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A "nice" step (1, 2 or 5 times a power of ten) that cuts `span` into about `count` parts. */
function niceStep(span: number, count: number): number {
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit < 1.5 ? 1 : unit < 3.5 ? 2 : unit < 7.5 ? 5 : 10) * power;
}

function format(n: number): string {
  if (n >= 1000) return `${Number((n / 1000).toFixed(n >= 10_000 ? 0 : 1))}k`;
  return String(Number(n.toPrecision(3)));
}

/** Renders `chart` as a standalone SVG document. */
export function lineChart(chart: Chart): string {
  const all = chart.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!chart.logY || y > 0));
  const xMax = Math.max(1, ...all.map(([x]) => x)) * 1.05;
  const yValues = all.map(([, y]) => y);
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const xOf = (x: number): number => margin.left + (x / xMax) * plotW;
  let yOf: (y: number) => number;
  const yTicks: number[] = [];
  if (chart.logY === true) {
    const lo = 10 ** Math.floor(Math.log10(Math.min(...yValues, 1)));
    const hi = 10 ** Math.ceil(Math.log10(Math.max(...yValues, 1)));
    yOf = (y) => margin.top + plotH - ((Math.log10(y) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
    for (let t = lo; t <= hi * 1.0001; t *= 10) yTicks.push(t);
  } else {
    const yMax = Math.max(1, ...yValues) * 1.1;
    yOf = (y) => margin.top + plotH - (y / yMax) * plotH;
    const step = niceStep(yMax, 5);
    for (let t = 0; t <= yMax; t += step) yTicks.push(t);
  }
  const xStep = niceStep(xMax, 6);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(`<text x="${width / 2 - margin.right / 2}" y="22" text-anchor="middle" font-size="15">${escape(chart.title)}</text>`);
  for (let t = 0; t <= xMax; t += xStep) {
    const x = xOf(t);
    parts.push(`<line x1="${x}" y1="${margin.top}" x2="${x}" y2="${margin.top + plotH}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${x}" y="${margin.top + plotH + 16}" text-anchor="middle">${format(t)}</text>`);
  }
  for (const t of yTicks) {
    const y = yOf(t);
    parts.push(`<line x1="${margin.left}" y1="${y}" x2="${margin.left + plotW}" y2="${y}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${margin.left - 6}" y="${y + 4}" text-anchor="end">${format(t)}</text>`);
  }
  parts.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  parts.push(`<text x="${margin.left + plotW / 2}" y="${height - 14}" text-anchor="middle">${escape(chart.xLabel)}</text>`);
  parts.push(`<text transform="translate(18 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escape(chart.yLabel)}</text>`);
  chart.series.forEach((series, k) => {
    const color = colors[k % colors.length] as string;
    const points = series.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!chart.logY || y > 0));
    if (points.length > 0) {
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.map(([x, y]) => `${xOf(x).toFixed(1)},${yOf(y).toFixed(1)}`).join(' ')}"/>`);
      points.forEach(([x, y], i) => {
        parts.push(`<circle cx="${xOf(x).toFixed(1)}" cy="${yOf(y).toFixed(1)}" r="3.5" fill="${color}"/>`);
        const label = series.labels?.[i];
        if (label !== undefined) parts.push(`<text x="${(xOf(x) + 5).toFixed(1)}" y="${(yOf(y) - 6).toFixed(1)}" font-size="10" fill="${color}">${escape(label)}</text>`);
      });
    }
    const ly = margin.top + 10 + k * 20;
    parts.push(`<line x1="${width - margin.right + 15}" y1="${ly}" x2="${width - margin.right + 35}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<text x="${width - margin.right + 40}" y="${ly + 4}">${escape(series.name)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
