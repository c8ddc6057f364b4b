// What every chart shares: a description screen readers get (ECharts' aria option), and a log step axis that ends
// just past the series' last step instead of at the next power of ten.
import { use } from 'echarts/core'
import { AriaComponent } from 'echarts/components'
import { formatCount } from './format'

use([AriaComponent])

/** The option with ECharts' aria on and `description` as the chart's accessible name. */
export function withAria<T extends object>(description: string, option: T): T & { aria: { enabled: true; label: { enabled: true; description: string } } } {
  return { ...option, aria: { enabled: true, label: { enabled: true, description } } }
}

/** A log axis of step + 1 (step 0 sits at 1) from 1 to a little past the last step. */
export function logStepAxis(lastStep: number, name = 'checkpoint step + 1 (log)'): Record<string, unknown> {
  return {
    type: 'log',
    name,
    nameLocation: 'middle',
    nameGap: 24,
    min: 1,
    max: Math.max(10, Math.ceil((lastStep + 1) * 1.3)),
    axisLabel: { fontSize: 10, formatter: (v: number) => formatCount(v) }
  }
}

/** An axis end: a value, or ECharts' function of the data's extent. */
type AxisBound = number | ((extent: { min: number; max: number }) => number)

/**
 * A value axis named along its middle, in the charts' small type. `right` draws no split lines, for the second
 * axis of a chart whose grid the first one draws.
 */
export function valueAxis(
  name: string,
  options: { type?: 'value' | 'log'; min?: AxisBound; max?: AxisBound; gap?: number; right?: boolean } = {}
): Record<string, unknown> {
  return {
    type: options.type ?? 'value',
    name,
    ...(options.min === undefined ? {} : { min: options.min }),
    ...(options.max === undefined ? {} : { max: options.max }),
    nameLocation: 'middle',
    nameGap: options.gap ?? (options.right ? 30 : 36),
    nameTextStyle: { fontSize: 11 },
    axisLabel: { fontSize: 10 },
    ...(options.right ? { splitLine: { show: false } } : {})
  }
}
