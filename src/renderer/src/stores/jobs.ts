import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { Job, JobRequest } from '../../../shared/api'
import { api } from '../api/client'
import { useCheckpointStore } from './checkpoints'

export const useJobStore = defineStore('jobs', () => {
  const jobs = ref<Job[]>([])
  const error = ref<string | null>(null)
  const active = computed(() => jobs.value.filter((j) => j.state === 'running' || j.state === 'queued'))

  async function load(): Promise<void> {
    try {
      jobs.value = await api.call('jobs.list')
    } catch {
      jobs.value = []
    }
  }

  async function start(request: JobRequest): Promise<void> {
    error.value = null
    try {
      upsert(await api.call('jobs.start', request))
    } catch (err) {
      error.value = (err as Error).message
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

  return { jobs, active, error, load, start, cancel }
})
