/// <reference types="vite/client" />
import type { PreloadBridge } from '../../shared/api'

declare global {
  interface Window {
    /** Present in the Electron app (exposed by the preload); absent in the browser mode. */
    api?: PreloadBridge
  }
}

declare module '*.vue' {
  import type { DefineComponent } from 'vue'
  const component: DefineComponent<object, object, unknown>
  export default component
}
