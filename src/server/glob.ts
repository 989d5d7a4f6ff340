/**
 * Redis's glob patterns (KEYS, SCAN MATCH): `*` any run, `?` one byte, `[abc]`, `[^a]`, `[a-z]`,
 * and `\` to take the next character literally. Keys and patterns are latin1 strings (bytes).
 * Matching is iterative with one backtrack point per `*`, so it is linear-ish, not exponential.
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = -1;
  while (t < text.length) {
    const step = p < pattern.length ? matchOne(pattern, p, text.charCodeAt(t)) : null;
    if (step !== null && step.kind === 'star') {
      starP = step.next;
      starT = t;
      p = step.next;
      continue;
    }
    if (step !== null && step.matched) {
      p = step.next;
      t++;
      continue;
    }
    if (starP === -1) return false;
    p = starP;
    t = ++starT;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

type Step = { readonly kind: 'star'; readonly next: number } | { readonly kind: 'one'; readonly matched: boolean; readonly next: number };

/** Tries the pattern element at `p` against one character. */
function matchOne(pattern: string, p: number, c: number): Step {
  const ch = pattern[p] as string;
  if (ch === '*') {
    let next = p;
    while (next < pattern.length && pattern[next] === '*') next++;
    return { kind: 'star', next };
  }
  if (ch === '?') return { kind: 'one', matched: true, next: p + 1 };
  if (ch === '\\' && p + 1 < pattern.length) return { kind: 'one', matched: pattern.charCodeAt(p + 1) === c, next: p + 2 };
  if (ch === '[') return matchClass(pattern, p + 1, c);
  return { kind: 'one', matched: pattern.charCodeAt(p) === c, next: p + 1 };
}

function matchClass(pattern: string, start: number, c: number): Step {
  let p = start;
  const negate = pattern[p] === '^';
  if (negate) p++;
  let matched = false;
  while (p < pattern.length && pattern[p] !== ']') {
    if (pattern[p] === '\\' && p + 1 < pattern.length) {
      if (pattern.charCodeAt(p + 1) === c) matched = true;
      p += 2;
    } else if (p + 2 < pattern.length && pattern[p + 1] === '-' && pattern[p + 2] !== ']') {
      const low = Math.min(pattern.charCodeAt(p), pattern.charCodeAt(p + 2));
      const high = Math.max(pattern.charCodeAt(p), pattern.charCodeAt(p + 2));
      if (c >= low && c <= high) matched = true;
      p += 3;
    } else {
      if (pattern.charCodeAt(p) === c) matched = true;
      p++;
    }
  }
  // An unclosed class runs to the end of the pattern, as in Redis.
  return { kind: 'one', matched: negate ? !matched : matched, next: Math.min(p + 1, pattern.length) };
}
