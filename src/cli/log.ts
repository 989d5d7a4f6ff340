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
    write(`${time.slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${node} ${event}${rest === '' ? '' : ` ${rest}`}\n`);
  };
}
