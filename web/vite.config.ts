import { fileURLToPath } from 'node:url';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

const api = process.env.PIXSHARE_API ?? 'http://localhost:4000';

/**
 * The web app: built into web/dist (scripts and styles under /app/, hashed), served by the API
 * server on the same port. `npm run dev` runs Vite with the API's routes proxied to `PIXSHARE_API`.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [svelte({ configFile: false })],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // /assets/… is the API's (a photo's files): the app's own files live under /app/.
    assetsDir: 'app',
    target: 'es2022',
    reportCompressedSize: false,
  },
  server: {
    proxy: Object.fromEntries(['/graphql', '/assets/', '/shared/', '/uploads/', '/blobs/', '/s/'].map((path) => [path, { target: api, ws: path === '/graphql', bypass: (req) => (path === '/s/' && req.headers.accept?.includes('text/html') ? req.url : undefined) }])),
  },
});
