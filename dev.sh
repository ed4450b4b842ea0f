#!/usr/bin/env bash
# Drip Matting developer entry point. Sets up .venv on first use, then:
#   ./dev.sh demo [OUTDIR]    matte the bundled demo scene with the default (classical) engine
#   ./dev.sh test [ARGS...]   run the whole test suite (ARGS go to pytest)
#   ./dev.sh setup            only create/refresh the virtual environment
#   ./dev.sh help             this text
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
STAMP=$VENV/.drip-installed

find_python() {
    for py in python3.13 python3.12 python3.11 python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$py"; return 0
        fi
    done
    echo "dev.sh: Python 3.11 or newer is needed (apt-get install python3)" >&2
    exit 1
}

setup() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        local py; py=$(find_python)
        "$py" -m venv "$VENV" || { echo "dev.sh: could not create a venv (on Debian: apt-get install python3-venv)" >&2; exit 1; }
        "$VENV/bin/python" -m pip install -q --upgrade pip
    fi
    # Reinstall when pyproject.toml changed or an extra is wanted that is not installed yet.
    local need=0 e
    [ -f "$STAMP" ] && [ ! pyproject.toml -nt "$STAMP" ] || need=1
    for e in ${extras//,/ }; do [ "$e" = core ] || grep -qw "$e" "$STAMP" 2>/dev/null || need=1; done
    if [ "$need" = 1 ]; then
        if [ -f "$STAMP" ]; then extras="$extras,$(cat "$STAMP")"; fi
        if [[ "$extras" == *drip* ]]; then
            # The pinned CPU build first: an unpinned torch would pull a multi-GB CUDA build.
            "$VENV/bin/python" -m pip install -q torch==2.13.0
        fi
        extras=$(echo "$extras" | tr ',' '\n' | sed '/^$/d' | { grep -vx core || true; } | sort -u | paste -sd, -)
        if [ -n "$extras" ]; then
            "$VENV/bin/python" -m pip install -q -e ".[$extras]"
        else
            "$VENV/bin/python" -m pip install -q -e .
        fi
        echo "${extras:-core}" > "$STAMP"
    fi
}

usage() {
    # the comment block at the top of this file, whatever its length, without the '# '
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

cmd="${1:-help}"
shift || true
case "$cmd" in
    demo)
        setup "core"   # the demo needs only the classical engine's dependencies
        exec "$VENV/bin/drip-matte" --demo "${1:-demo-out}"
        ;;
    test)
        setup "drip,gui,dev,bench,cluster"
        if [ "${DRIP_GIMP_TESTS:-auto}" != "0" ] && [ -x tests/gimp/build_roots.sh ]; then
            # Real GIMP 3.0 and 3.2 in cached Debian chroots (needs root and Debian's registry).
            tests/gimp/build_roots.sh || echo "dev.sh: GIMP roots not built; the GIMP tests will say why they skip" >&2
        fi
        set +e
        # lint first (seconds), then the suite; either failing fails the run
        "$VENV/bin/ruff" check .
        lint=$?
        QT_QPA_PLATFORM=offscreen "$VENV/bin/python" -m pytest "$@"
        rc=$?
        set -e
        if [ "$rc" -eq 5 ]; then echo "dev.sh: no tests were collected"; rc=0; fi
        if [ "$lint" -ne 0 ]; then echo "dev.sh: ruff check found problems (above)"; [ "$rc" -ne 0 ] || rc=1; fi
        exit "$rc"
        ;;
    setup)
        setup "drip,gui,dev,bench,cluster"
        ;;
    help|-h|--help)
        usage
        ;;
    *)
        echo "dev.sh: unknown command '$cmd'" >&2
        usage >&2
        exit 2
        ;;
esac
