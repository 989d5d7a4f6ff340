/** Structured logs: one JSON object per line, or a readable line for a terminal. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'pretty';

/** A logger bound to one node. */
export type Logger = (level: LogLevel, event: string, fields?: Record<string, unknown>) => void;

export function createLogger(node: string, format: LogFormat, write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  return (level, event, fields = {}) => {
    const time = new Date().toISOString();
    if (format === 'json') {
      write(`${JSON.stringify({ time, level, node, event, ...fields })}\n`);
      return;
    }
    const rest = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    // Progress (a field `percent`) shows as a bar on a terminal; JSON lines keep the number.
    const percent = fields['percent'];
    const bar = typeof percent === 'number' ? ` ${progressBar(percent)}` : '';
    write(`${time.slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${node} ${event}${bar}${rest === '' ? '' : ` ${rest}`}\n`);
  };
}

/** A 20-character progress bar: [##########..........] 50%. */
export function progressBar(percent: number): string {
  const filled = Math.max(0, Math.min(20, Math.round(percent / 5)));
  return `[${'#'.repeat(filled)}${'.'.repeat(20 - filled)}] ${Math.round(percent)}%`;
}
