// The app icon, drawn here rather than kept as a binary: FeatureTrace's ◆ in its accent colour on a light
// rounded square, 1,024 px (electron-builder makes the .icns and .ico from it). `npm run dist` runs this.
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { crc32, deflateSync } from 'node:zlib'
import { pathToFileURL } from 'node:url'
import { ROOT } from '../lib.mjs'

export const ICON = join(ROOT, 'build', 'icon.png')
const SIZE = 1024
const ACCENT = [0x42, 0x63, 0xeb]
const PANEL = [0xf6, 0xf7, 0xf9]
const LINE = [0xd0, 0xd6, 0xe0]

/** Coverage of a pixel by a shape given as a signed distance (negative inside), antialiased over one pixel. */
const cover = (d) => Math.min(1, Math.max(0, 0.5 - d))

function roundedSquare(x, y, inset, radius) {
  const h = SIZE / 2 - inset - radius
  const qx = Math.abs(x - SIZE / 2) - h
  const qy = Math.abs(y - SIZE / 2) - h
  return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - radius
}

/** The icon's pixels, RGBA, row by row. */
export function drawIcon() {
  const px = Buffer.alloc(SIZE * SIZE * 4)
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const cx = x + 0.5
      const cy = y + 0.5
      const outer = cover(roundedSquare(cx, cy, 64, 180))
      const inner = cover(roundedSquare(cx, cy, 76, 168))
      // The diamond: |dx| + |dy| <= r, its distance scaled by 1/√2 to be in pixels.
      const diamond = cover((Math.abs(cx - SIZE / 2) + Math.abs(cy - SIZE / 2) - 300) / Math.SQRT2)
      const base = inner > 0 ? PANEL.map((p, i) => p * inner + LINE[i] * (1 - inner)) : LINE
      const rgb = base.map((b, i) => b * (1 - diamond) + ACCENT[i] * diamond)
      const o = (y * SIZE + x) * 4
      px[o] = Math.round(rgb[0])
      px[o + 1] = Math.round(rgb[1])
      px[o + 2] = Math.round(rgb[2])
      px[o + 3] = Math.round(255 * outer)
    }
  }
  return px
}

function chunk(type, data) {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(data.length)
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  return Buffer.concat([len, body, crc])
}

/** A PNG of the icon (8-bit RGBA, no filtering). */
export function iconPng() {
  const rgba = drawIcon()
  const raw = Buffer.alloc(SIZE * (SIZE * 4 + 1))
  for (let y = 0; y < SIZE; y++) rgba.copy(raw, y * (SIZE * 4 + 1) + 1, y * SIZE * 4, (y + 1) * SIZE * 4)
  const header = Buffer.alloc(13)
  header.writeUInt32BE(SIZE, 0)
  header.writeUInt32BE(SIZE, 4)
  header.set([8, 6, 0, 0, 0], 8)
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  return Buffer.concat([signature, chunk('IHDR', header), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))])
}

export function writeIcon(path = ICON) {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, iconPng())
  return path
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) console.log(`wrote ${writeIcon()}`)
