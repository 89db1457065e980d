// Vite's build of the dashboard page. cmake/WebUi.cmake passes ROAM_WEBUI_OUT
// (the build tree's webui/dist) so that nothing is written into the sources.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  build: {
    outDir: process.env.ROAM_WEBUI_OUT || 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 200,
  },
});
