// Integration tests in a real VS Code (downloaded by @vscode/test-electron): not part of `npm test`.
//   node esbuild.mjs && npx tsc -p test/integration && npx vscode-test
// The workspace is a temporary copy of examples/shapes (fixes change files), and CLIP_LENS_MODEL points the
// extension at the small fixture model, so nothing is downloaded.
import { defineConfig } from '@vscode/test-cli';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));
for (const need of ['examples/shapes', 'test/fixtures/tiny-clip', 'dist/extension.js', 'out/integration/extension.test.js']) {
  if (!fs.existsSync(path.join(root, need))) throw new Error(`${need} is missing: run node esbuild.mjs && npx tsc -p test/integration (and make the fixtures)`);
}
const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-it-'));
fs.cpSync(path.join(root, 'examples', 'shapes'), path.join(workspace, 'shapes'), { recursive: true });
const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'clip-lens-it-cache-'));

export default defineConfig({
  label: 'integration',
  files: 'out/integration/**/*.test.js',
  version: process.env.VSCODE_TEST_VERSION || 'stable',
  workspaceFolder: workspace,
  env: {
    CLIP_LENS_MODEL: path.join(root, 'test', 'fixtures', 'tiny-clip'),
    CLIP_LENS_CACHE: cache,
    CLIP_LENS_IT_WORKSPACE: workspace,
  },
  launchArgs: ['--disable-extensions', '--disable-workspace-trust', '--skip-welcome', '--skip-release-notes'],
  mocha: { ui: 'tdd', timeout: 180_000, color: true },
});
