// Files read line by line in bounded chunks (LF or CRLF), for inputs of any size: corpora, feature sets.
import { closeSync, openSync, readSync, statSync } from 'node:fs'
import { UserError } from '../../shared/api'
import { unreadable } from './json-file'

/** Bytes read per system call while scanning for lines. */
const SCAN_BYTES = 4 * 2 ** 20

/** Longest line read as one record: V8's strings stop at 2^29 − 24 UTF-16 units, and a record is one string. */
export const MAX_LINE_BYTES = 256 * 2 ** 20

/**
 * Calls `onLine(start, end, line, bytes)` for each line of an open file (LF or CRLF; `end` excludes the line
 * break), reading it in bounded chunks; `bytes` is the line when it lies within one chunk (valid only during
 * the call), else null. A final newline makes no empty last line. A line longer than MAX_LINE_BYTES throws
 * `tooLong(line, bytesSoFar)` before it is read whole.
 */
export function forEachLine(
  fd: number,
  size: number,
  tooLong: (line: number, bytes: number) => Error,
  onLine: (start: number, end: number, line: number, bytes: Uint8Array | null) => void
): void {
  const buf = Buffer.alloc(SCAN_BYTES)
  let lineStart = 0
  let line = 1
  let prevCR = false
  for (let pos = 0; pos < size;) {
    if (pos - lineStart > MAX_LINE_BYTES) throw tooLong(line, pos - lineStart)
    const n = readSync(fd, buf, 0, Math.min(SCAN_BYTES, size - pos), pos)
    if (n === 0) break
    for (let i = buf.indexOf(0x0a, 0); i !== -1 && i < n; i = buf.indexOf(0x0a, i + 1)) {
      const lf = pos + i
      const cr = lf > lineStart && (i > 0 ? buf[i - 1] === 0x0d : prevCR)
      const end = cr ? lf - 1 : lf
      if (end - lineStart > MAX_LINE_BYTES) throw tooLong(line, end - lineStart)
      onLine(lineStart, end, line++, lineStart >= pos ? buf.subarray(lineStart - pos, end - pos) : null)
      lineStart = lf + 1
    }
    prevCR = buf[n - 1] === 0x0d
    pos += n
  }
  if (lineStart < size) onLine(lineStart, prevCR ? size - 1 : size, line, null)
}

/** Reads bytes [start, end) of an open file. */
export function readRange(fd: number, start: number, end: number): Buffer {
  const buf = Buffer.alloc(end - start)
  for (let done = 0; done < buf.length;) {
    const n = readSync(fd, buf, done, buf.length - done, start + done)
    if (n === 0) throw new Error(`file ended at byte ${start + done}, before ${end}`)
    done += n
  }
  return buf
}

/** Each line of a file as bytes with its 1-based number; a file that cannot be opened is a UserError saying why (`what` names it). */
export function readLinesOf(
  file: string,
  what: string,
  tooLong: (line: number, bytes: number) => Error,
  onLine: (bytes: Uint8Array, line: number) => void
): void {
  let fd: number
  try {
    if (!statSync(file).isFile()) throw new UserError(`The ${what} ${file} is a folder, not a file.`)
    fd = openSync(file, 'r')
  } catch (err) {
    if (err instanceof UserError) throw err
    throw unreadable(file, what, err)
  }
  try {
    forEachLine(fd, statSync(file).size, tooLong, (start, end, line, bytes) => onLine(bytes ?? readRange(fd, start, end), line))
  } finally {
    closeSync(fd)
  }
}
