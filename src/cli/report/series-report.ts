// A project's series summarised as report.json plus report.html: FVU, L0 and dead fraction per checkpoint,
// language composition, drift histograms and formation steps. The charts are ECharts rendered to SVG on
// the server side, inlined, so the page opens offline with no script at all.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { EChartsOption } from 'echarts'
import type { CallInput, CallName, CallOutput } from '../../shared/api'
import { callService, type Workspace } from '../../core/services'
import { VERSION } from '../../core/version'

export interface SeriesReport {
  generatedAt: string
  version: string
  project: string
  layer: number
  checkpoints: {
    step: number
    tokensSeen: number | null
    sae: { n: number; k: number; fvu: number | null; l0: number | null; deadFraction: number | null; warmStarted: boolean } | null
    languages: Record<string, number>
    features: number
  }[]
  drift: { steps: number[]; n: number; warmStarted: boolean; histograms: number[][]; meanCosToFinal: number[] } | null
  formation: { threshold: number; formed: number; never: number; byStep: Record<string, number> } | null
}

/** The report of a layer's series, read through the API as any door reads it. */
export async function seriesReport(ws: Workspace, layer: number): Promise<SeriesReport> {
  const call = <C extends CallName>(name: C, payload?: CallInput<C>): Promise<CallOutput<C>> => callService(ws, name, payload)
  const saes = (await call('saes.list')).filter((s) => s.layer === layer)
  const comps = await call('analysis.composition')
  const sets = (await call('features.sets')).filter((s) => !s.superseded && s.layer === layer && s.source === 'sae')
  const withSae = new Set(saes.map((s) => s.checkpointId))
  const checkpoints = (await call('checkpoints.list'))
    .filter((c) => withSae.has(c.id))
    .map((c) => {
      const sae = saes.find((s) => s.checkpointId === c.id) ?? null
      const set = sets.find((s) => s.checkpointId === c.id)
      const comp = set ? comps.find((x) => x.setId === set.id) : undefined
      return {
        step: c.step,
        tokensSeen: c.tokensSeen,
        sae: sae && { n: sae.n, k: sae.k, fvu: sae.fvu, l0: sae.l0, deadFraction: sae.deadFraction, warmStarted: sae.warmStarted },
        languages: comp?.languages ?? {},
        features: comp?.features ?? 0
      }
    })
  let drift: SeriesReport['drift'] = null
  if (saes.length) {
    const o = await call('dynamics.overview', { layer })
    drift = {
      steps: o.steps,
      n: o.n,
      warmStarted: o.warmStarted,
      histograms: o.histograms,
      meanCosToFinal: o.histograms.map((h) => h.reduce((a, c, b) => a + c * (-1 + (b + 0.5) / 50), 0) / Math.max(1, o.n))
    }
  }
  const run = await call('dynamics.run', { layer })
  let formation: SeriesReport['formation'] = null
  if (run) {
    const byStep: Record<string, number> = {}
    let never = 0
    for (const r of await call('dynamics.rows', { layer })) {
      if (r.formationStep.sae === null) never++
      else byStep[r.formationStep.sae] = (byStep[r.formationStep.sae] ?? 0) + 1
    }
    formation = { threshold: run.threshold, formed: run.n - never, never, byStep }
  }
  const project = await call('project.info')
  return { generatedAt: new Date().toISOString(), version: VERSION, project: project?.path ?? '', layer, checkpoints, drift, formation }
}

const LANG_COLORS: Record<string, string> = { en: '#4e79a7', ja: '#e15759', mix: '#b07aa1' }

function charts(r: SeriesReport): { title: string; option: EChartsOption }[] {
  const steps = r.checkpoints.map((c) => String(c.step))
  const base = { animation: false, grid: { left: 56, right: 24, top: 40, bottom: 48 }, textStyle: { fontFamily: 'sans-serif' } }
  const out: { title: string; option: EChartsOption }[] = [
    {
      title: 'SAE quality per checkpoint',
      option: {
        ...base,
        legend: { top: 4 },
        xAxis: { type: 'category', data: steps, name: 'training step', nameLocation: 'middle', nameGap: 28 },
        yAxis: [
          { type: 'value', name: 'FVU', min: 0 },
          { type: 'value', name: 'L0', min: 0, splitLine: { show: false } }
        ],
        series: [
          { name: 'FVU (held out)', type: 'line', symbolSize: 8, data: r.checkpoints.map((c) => c.sae?.fvu ?? null) },
          { name: 'L0', type: 'line', yAxisIndex: 1, symbolSize: 8, data: r.checkpoints.map((c) => c.sae?.l0 ?? null) },
          { name: 'dead fraction', type: 'bar', barWidth: 10, data: r.checkpoints.map((c) => c.sae?.deadFraction ?? null) }
        ]
      }
    },
    {
      title: 'Language of features per checkpoint (Inaba et al.’s rule)',
      option: {
        ...base,
        legend: { top: 4 },
        xAxis: { type: 'category', data: steps, name: 'training step', nameLocation: 'middle', nameGap: 28 },
        yAxis: { type: 'value', name: 'features' },
        series: ['en', 'ja', 'mix'].map((lang) => ({
          name: lang === 'mix' ? 'bilingual (mix)' : lang,
          type: 'bar' as const,
          stack: 'lang',
          color: LANG_COLORS[lang],
          data: r.checkpoints.map((c) => c.languages[lang] ?? 0)
        }))
      }
    }
  ]
  if (r.drift && r.drift.steps.length > 1) {
    const d = r.drift
    const bins = Array.from({ length: 100 }, (_, b) => (-1 + (b + 0.5) / 50).toFixed(2))
    // The first, a middle and the second-to-last checkpoint against the final SAE.
    const picks = [...new Set([0, Math.floor((d.steps.length - 1) / 2), d.steps.length - 2])]
    out.push({
      title: 'Drift: cosine of each feature’s decoder row to the final SAE’s',
      option: {
        ...base,
        legend: { top: 4 },
        xAxis: { type: 'category', data: bins, name: 'cosine to final', nameLocation: 'middle', nameGap: 28, axisLabel: { interval: 24 } },
        yAxis: { type: 'log', name: 'features (log)', min: 1 },
        series: picks.map((t) => ({
          name: `step ${d.steps[t]}`,
          type: 'bar' as const,
          barGap: '-100%',
          itemStyle: { opacity: 0.6 },
          data: d.histograms[t]!.map((v) => (v > 0 ? v : null))
        }))
      }
    })
  }
  if (r.formation) {
    const f = r.formation
    const keys = [...r.checkpoints.map((c) => String(c.step)).filter((s) => s in f.byStep), 'never']
    out.push({
      title: `Formation step of every feature (M above ${f.threshold})`,
      option: {
        ...base,
        xAxis: { type: 'category', data: keys, name: 'formation step', nameLocation: 'middle', nameGap: 28 },
        yAxis: { type: 'value', name: 'features' },
        series: [{ type: 'bar', color: '#59a14f', data: keys.map((k) => (k === 'never' ? f.never : f.byStep[k]!)) }]
      }
    })
  }
  return out
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

export async function renderReportHtml(r: SeriesReport): Promise<string> {
  const echarts = await import('echarts')
  const figures = charts(r).map(({ title, option }) => {
    const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: 720, height: 320 })
    chart.setOption(option)
    const svg = chart.renderToSVGString()
    chart.dispose()
    return `<figure><figcaption>${escapeHtml(title)}</figcaption>${svg}</figure>`
  })
  const fmt = (x: number | null | undefined, digits = 3): string => (x === null || x === undefined ? '–' : x.toFixed(digits))
  const rows = r.checkpoints
    .map((c) => {
      const l = c.languages
      return `<tr><td>${c.step}</td><td>${c.tokensSeen?.toLocaleString('en') ?? '–'}</td><td>${fmt(c.sae?.fvu)}</td><td>${fmt(c.sae?.l0, 1)}</td><td>${c.sae?.deadFraction === null || c.sae?.deadFraction === undefined ? '–' : `${(100 * c.sae.deadFraction).toFixed(1)}%`}</td><td>${l.en ?? 0}</td><td>${l.ja ?? 0}</td><td>${l.mix ?? 0}</td><td>${c.sae ? (c.sae.warmStarted ? 'warm start' : 'from scratch') : '–'}</td></tr>`
    })
    .join('\n')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>FeatureTrace report — layer ${r.layer}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1500px; color: #222; padding: 0 16px; }
h1 { font-size: 20px; margin: 0 0 4px; } .meta { color: #666; margin-bottom: 16px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, 740px); gap: 12px; }
figure { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: 8px; background: #fff; }
figcaption { font-weight: 600; margin: 0 0 4px 4px; }
table { border-collapse: collapse; margin: 16px 0; } td, th { border-bottom: 1px solid #e5e5e5; padding: 4px 10px; text-align: right; }
th { background: #f5f5f5; }
</style></head><body>
<h1>FeatureTrace series report · layer ${r.layer}</h1>
<div class="meta">${escapeHtml(r.project)} · generated ${escapeHtml(r.generatedAt)} by FeatureTrace ${escapeHtml(r.version)}${r.drift ? ` · ${r.drift.n} latents, ${r.drift.warmStarted ? 'warm-started series (feature i is latent i)' : 'matched series'}` : ''}</div>
<table><thead><tr><th>step</th><th>tokens seen</th><th>FVU</th><th>L0</th><th>dead</th><th>en</th><th>ja</th><th>mix</th><th>SAE</th></tr></thead><tbody>
${rows}
</tbody></table>
<div class="grid">${figures.join('\n')}</div>
</body></html>
`
}

/** Writes report.json and report.html into `dir` (each written whole, then renamed into place). */
export async function writeSeriesReport(ws: Workspace, layer: number, dir: string): Promise<{ json: string; html: string; report: SeriesReport }> {
  mkdirSync(dir, { recursive: true })
  const report = await seriesReport(ws, layer)
  const json = join(dir, 'report.json')
  const html = join(dir, 'report.html')
  writeFileSync(`${json}.tmp`, JSON.stringify(report, null, 2) + '\n')
  renameSync(`${json}.tmp`, json)
  writeFileSync(`${html}.tmp`, await renderReportHtml(report))
  renameSync(`${html}.tmp`, html)
  return { json, html, report }
}
