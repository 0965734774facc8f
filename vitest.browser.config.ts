import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * Browser tests (`npm run test:browser`): the web app in Debian's Chromium, driven by
 * playwright-core, against a real server. The app is built first when its build is stale.
 */
export default defineConfig({
  resolve: base.resolve,
  test: {
    include: ['test/browser/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts', 'test/browser/build-web.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
