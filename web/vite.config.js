// Vite's build of the dashboard page. cmake/WebUi.cmake passes ROAM_WEBUI_OUT
// (the build tree's webui/dist) so that nothing is written into the sources.
// `npm run dev` serves the page with hot reload and sends /api to a running
// roamd: ROAM_DASHBOARD=http://ADDR:7948 ROAM_TOKEN=T npm run dev
// (or to tests/web/mock_server.mjs).
import { defineConfig } from 'vite';

const target = process.env.ROAM_DASHBOARD || 'http://127.0.0.1:8099';
const token = process.env.ROAM_TOKEN || 'mocktoken';

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
  server: {
    proxy: {
      '/api': { target, changeOrigin: true, headers: { Authorization: `Bearer ${token}` } },
    },
  },
});
