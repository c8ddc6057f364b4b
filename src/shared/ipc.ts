/** Electron IPC channel names, shared by main and preload. */
export const API_CHANNEL = 'featuretrace:api'
export const EVENT_CHANNEL = 'featuretrace:event'
