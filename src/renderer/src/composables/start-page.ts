// Whether the start page is shown over an open project, and whether the About dialog is open: asked for by
// the project bar, the status bar and the desktop app's menu (app.showStart, app.showAbout).
import { ref } from 'vue'
import { api } from '../api/client'

export const startPageOpen = ref(false)
export const aboutOpen = ref(false)

api.on('app.showStart', () => (startPageOpen.value = true))
api.on('app.showAbout', () => (aboutOpen.value = true))
