#!/usr/bin/env bash
# Screenshot every dashboard page from the real server in headless Chromium.
#   scripts/screenshots.sh [OUTDIR]      (default: screenshots/, which git ignores)
# Needs Debian's chromium (apt-get install -y chromium) and playwright (requirements-dev.txt).
# Uses NORMSCOPE_CACHE / NORMSCOPE_PER_CLASS from the environment, so precompute first for full pages.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-screenshots}"
PORT=8599
PY="${PYTHON:-.venv/bin/python}"
SHOOT="${SCREENSHOT_TOOL:-../shared/tools/screenshot.py}"  # relative to the repository root
[ -f "$SHOOT" ] || { echo "no screenshot tool at $SHOOT: set SCREENSHOT_TOOL" >&2; exit 1; }
# Every page's url path ("" for the home page), from the one page list in ui/navigation.py.
ROUTES="$("$PY" -c 'from ui.navigation import PAGES; print("\n".join(p.route for p in PAGES))')"
mapfile -t ROUTES <<<"$ROUTES"

PYTHONPATH=. "$PY" -m streamlit run app.py --server.headless true --server.port "$PORT" \
    --browser.gatherUsageStats false >"${TMPDIR:-/tmp}/normscope-streamlit.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT

for _ in $(seq 1 60); do  # wait for the health endpoint (up to 60 s)
    if curl -fs "http://localhost:$PORT/_stcore/health" >/dev/null; then break; fi
    sleep 1
done
curl -fs "http://localhost:$PORT/_stcore/health" >/dev/null || { echo "server did not start" >&2; exit 1; }

"$PY" "$SHOOT" "http://localhost:$PORT" "$OUT" "${ROUTES[@]}"
