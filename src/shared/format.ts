// Number formatting shared by the terminal and the renderer.

/** Bytes in B, KB, MB, GB or TB (powers of 1024); `none` for an unknown size. */
export function formatBytes(n: number | null, none = '—'): string {
  if (n === null) return none
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`
}
