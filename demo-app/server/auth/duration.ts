const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `--session-ttl` values: `500ms`, `30s`, `5m`, `12h`, `7d`, or a bare number
 * of milliseconds. Undefined when the text is none of these.
 */
export function parseDuration(text: string): number | undefined {
  const found = /^(\d{1,12})(ms|s|m|h|d)?$/.exec(text.trim());
  if (found === null) return undefined;
  const ms = Number(found[1]) * (UNITS[found[2] ?? 'ms'] ?? 1);
  return Number.isSafeInteger(ms) ? ms : undefined;
}
