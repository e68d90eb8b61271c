// Aligned plain-text tables: easy to read in a terminal and to paste into Markdown.

export interface Column {
  header: string
  /** Numbers read best right-aligned. */
  align?: 'left' | 'right'
}

/** Renders a Markdown-compatible table whose columns also line up in plain text. */
export function formatTable(columns: Column[], rows: string[][]): string {
  const widths = columns.map((column, i) => Math.max(column.header.length, ...rows.map((row) => (row[i] ?? '').length)))
  const pad = (text: string, i: number): string =>
    columns[i]?.align === 'right' ? text.padStart(widths[i] ?? 0) : text.padEnd(widths[i] ?? 0)
  const line = (cells: string[]): string => `| ${cells.map(pad).join(' | ')} |`
  const rule = `|${widths.map((width, i) => (columns[i]?.align === 'right' ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`
  return [line(columns.map((c) => c.header)), rule, ...rows.map(line)].join('\n')
}

export const fixed = (value: number, digits = 2): string => (Number.isFinite(value) ? value.toFixed(digits) : '-')
export const whole = (value: number): string => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-')
