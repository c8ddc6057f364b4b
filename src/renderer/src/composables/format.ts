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
