import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { AppInfo, ProjectInfo } from '../../../shared/api'
import { api } from '../api/client'

export const useProjectStore = defineStore('project', () => {
  const app = ref<AppInfo | null>(null)
  const project = ref<ProjectInfo | null>(null)
  const error = ref<string | null>(null)

  async function load(): Promise<void> {
    app.value = await api.call('app.info')
    project.value = app.value.project
  }

  async function open(path: string): Promise<boolean> {
    error.value = null
    try {
      project.value = await api.call('project.open', { path })
      return true
    } catch (err) {
      error.value = (err as Error).message
      return false
    }
  }

  api.on('project.changed', (p) => (project.value = p))
  api.on('checkpoints.changed', ({ count }) => {
    if (project.value) project.value = { ...project.value, checkpointCount: count }
  })

  return { app, project, error, load, open }
})
