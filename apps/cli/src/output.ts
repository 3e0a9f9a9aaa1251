/** Prints rows as an aligned text table with a header line. */
export function printTable(headers: string[], rows: Array<Array<string | number | boolean | null | undefined>>, out = process.stdout): void {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  out.write(line(headers) + '\n');
  for (const r of cells) out.write(line(r) + '\n');
}

export function printJson(value: unknown, out = process.stdout): void {
  out.write(JSON.stringify(value, null, 2) + '\n');
}
