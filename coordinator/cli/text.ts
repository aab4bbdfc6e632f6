/** Plain-text layout for terminals: aligned columns, short ages, one-line values. */

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** `42s`, `7m`, `3h`, `12d`: how long ago `iso` was; `-` when unknown. */
export function age(iso: string | undefined, nowMs: number): string {
  const thenMs = iso === undefined ? Number.NaN : Date.parse(iso);
  if (Number.isNaN(thenMs)) return "-";
  const s = Math.max(0, Math.round((nowMs - thenMs) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 120 * 60) return `${Math.round(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

/** A value on one line, cut to `charsMax`, `-` when absent. */
export function cell(value: unknown, charsMax = 200): string {
  if (value === undefined || value === null || value === "") return "-";
  const text = (typeof value === "string" ? value : JSON.stringify(value)).replace(/\s+/g, " ");
  return text.length > charsMax ? `${text.slice(0, charsMax - 1)}…` : text;
}

/** `key  value` lines with the keys aligned. */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n");
}
