// Why a form field's value cannot be used, in words for the person who typed it (null: it can).

/** A whole number in [min, max]; empty is fine when the field is optional (the form then uses its default). */
export function wholeNumberError(value: unknown, name: string, min: number, max = Infinity, optional = false): string | null {
  if (value === '' || value === null || value === undefined) return optional ? null : `${name} is needed.`
  const x = typeof value === 'number' ? value : Number(value)
  if (!Number.isInteger(x)) return `${name} must be a whole number, not ${String(value)}.`
  if (x < min || x > max)
    return `${name} must be ${max === Infinity ? `at least ${min.toLocaleString('en')}` : `${min.toLocaleString('en')}–${max.toLocaleString('en')}`}; ${x.toLocaleString('en')} is not.`
  return null
}

/** A number (not necessarily whole) strictly inside (lo, hi). */
export function numberBetweenError(value: unknown, name: string, lo: number, hi: number, why: string): string | null {
  if (value === '' || value === null || value === undefined) return `${name} is needed.`
  const x = typeof value === 'number' ? value : Number(value)
  if (!Number.isFinite(x) || x <= lo || x >= hi) return `${name} must lie between ${lo} and ${hi} (${why}); ${String(value)} does not.`
  return null
}

/** The value of an optional number field, or undefined when it is empty. */
export const optionalNumber = (value: unknown): number | undefined => (value === '' || value === null || value === undefined ? undefined : Number(value))
