/** CSV as RFC 4180 quotes it (lines end in LF), safe to open in a spreadsheet. */

/** One field: quoted when it holds a quote, comma or line break; text starting = + - @ is kept from formulas. */
export function csvField(v: string | number | null): string {
  if (v === null) return '';
  const s = String(v);
  const safe = typeof v === 'string' && /^[=+\-@]/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** One line, with its line break. */
export const csvLine = (fields: ReadonlyArray<string | number | null>): string =>
  `${fields.map(csvField).join(',')}\n`;
