import { formatBytes, formatDuration } from '../../../shared/format'

export { formatBytes, formatDuration }

export function formatCount(n: number | null): string {
  if (n === null) return '—'
  if (n >= 1e12) return `${(n / 1e12).toFixed(2)}T`
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`
  return String(n)
}

export function formatRate(rate: number | null, unit: string | null): string {
  if (rate === null) return ''
  if (unit === 'B/s') return `${formatBytes(rate)}/s`
  return `${formatCount(Math.round(rate))} ${unit ?? ''}`
}

/** A value as text: numbers with thousands separators ("12,345"), anything else as it is. */
export const n = (v: unknown): string => (typeof v === 'number' ? v.toLocaleString('en') : String(v))

/** "1 feature", "12,345 features": the count and the noun in the number it needs. */
export const plural = (count: unknown, one: string, many = `${one}s`): string => `${n(count)} ${count === 1 ? one : many}`
