import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { CallInput, Job } from '../../../shared/api'
import { api } from '../api/client'
import { useCheckpointStore } from './checkpoints'

export const useJobStore = defineStore('jobs', () => {
  const jobs = ref<Job[]>([])
  const error = ref<string | null>(null)
  const active = computed(() => jobs.value.filter((j) => j.state === 'running' || j.state === 'queued'))

  async function load(): Promise<void> {
    try {
      jobs.value = await api.call('jobs.list')
    } catch (err) {
      // No project open, or the server unreachable: an empty list, and why.
      jobs.value = []
      error.value = (err as Error).message
    }
  }

  /** A request waiting for the user to confirm what it replaces (shown by ConfirmReplace). */
  const confirming = ref<{ request: CallInput<'jobs.start'>; replaces: string[]; labelsKept: number; decide: (ok: boolean) => void } | null>(null)

  /** Starts a job (a request as the API takes it: defaults may be left out); when it would replace stored results, asks first. Resolves false when declined. */
  async function start(request: CallInput<'jobs.start'>): Promise<boolean> {
    error.value = null
    try {
      const { replaces, labelsKept } = await api.call('jobs.replaces', request)
      if (replaces.length > 0) {
        const ok = await new Promise<boolean>((decide) => (confirming.value = { request, replaces, labelsKept, decide }))
        confirming.value = null
        if (!ok) return false
      }
      upsert(await api.call('jobs.start', request))
      return true
    } catch (err) {
      error.value = (err as Error).message
      return false
    }
  }

  async function cancel(id: number): Promise<void> {
    upsert(await api.call('jobs.cancel', { id }))
  }

  function upsert(job: Job): void {
    const i = jobs.value.findIndex((j) => j.id === job.id)
    if (i >= 0) jobs.value[i] = job
    else jobs.value = [job, ...jobs.value]
  }

  api.on('job.updated', (job) => {
    const before = jobs.value.find((j) => j.id === job.id)?.state
    upsert(job)
    // A finished verification changes what the checkpoint table shows.
    if (job.state === 'done' && before !== 'done') void useCheckpointStore().load()
  })
  api.on('project.changed', () => void load())

  return { jobs, active, error, confirming, load, start, cancel }
})
