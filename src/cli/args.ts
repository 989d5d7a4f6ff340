/** A small, strict flag parser: every unknown flag or bad value is an error that names it. */

export class UsageError extends Error {
  override name = 'UsageError';
}

/** What a flag takes: a string, an integer in a range, or nothing (a switch). */
export type FlagSpec =
  | { readonly type: 'string'; readonly help: string; readonly default?: string }
  | { readonly type: 'int'; readonly help: string; readonly min: number; readonly max: number; readonly default?: number }
  | { readonly type: 'switch'; readonly help: string };

export type FlagValues = Record<string, string | number | boolean | undefined>;

/** Parses `--name value`, `--name=value` and `--switch`; returns the values by name. */
export function parseFlags(argv: readonly string[], specs: Readonly<Record<string, FlagSpec>>): FlagValues {
  const { values, args } = parseArgs(argv, specs, 0);
  void args;
  return values;
}

/** Like parseFlags, and also takes up to `positionalMax` plain arguments, in order. */
export function parseArgs(argv: readonly string[], specs: Readonly<Record<string, FlagSpec>>, positionalMax: number): { values: FlagValues; args: string[] } {
  const args: string[] = [];
  const values: FlagValues = {};
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.type !== 'switch' && spec.default !== undefined) values[name] = spec.default;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) {
      if (args.length >= positionalMax) throw new UsageError(`unexpected argument '${arg}'`);
      args.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const spec = specs[name];
    if (spec === undefined) throw new UsageError(`unknown flag --${name}`);
    if (spec.type === 'switch') {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      values[name] = true;
      continue;
    }
    const raw = eq !== -1 ? arg.slice(eq + 1) : argv[++i];
    if (raw === undefined) throw new UsageError(`--${name} needs a value`);
    if (spec.type === 'string') {
      values[name] = raw;
      continue;
    }
    const n = Number(raw);
    if (!Number.isInteger(n) || n < spec.min || n > spec.max) throw new UsageError(`--${name} must be a whole number from ${spec.min} to ${spec.max}, not '${raw}'`);
    values[name] = n;
  }
  return { values, args };
}

/** The help text of a command's flags. */
export function flagHelp(specs: Readonly<Record<string, FlagSpec>>): string {
  const lines = Object.entries(specs).map(([name, spec]) => {
    const value = spec.type === 'switch' ? '' : spec.type === 'int' ? ' N' : ' VALUE';
    const def = spec.type !== 'switch' && spec.default !== undefined ? ` (default ${spec.default})` : '';
    return { flag: `  --${name}${value}`, text: `${spec.help}${def}` };
  });
  // The help column starts after the longest flag, so no flag runs into its text.
  const width = Math.max(...lines.map((line) => line.flag.length)) + 2;
  return lines.map((line) => line.flag.padEnd(width) + line.text).join('\n');
}
