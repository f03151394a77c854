#!/usr/bin/env bash
# Model servers for tests/test_servers_*.py, one virtualenv each under .servers/ (or
# $SXAI_SERVERS_DIR): their pins conflict with ours, so none of them goes into .venv.
# Idempotent: a venv whose requirement line is unchanged is left as it is; a changed line or
# a half-built venv is rebuilt from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="${SXAI_SERVERS_DIR:-.servers}"

# The exact versions the wire formats are tested against (docs/adapters.md names them).
declare -A SERVERS=(
    [mlserver]="mlserver==1.7.1 mlserver-sklearn==1.7.1"
    [kserve]="kserve==0.21.0"
    [mlflow]="mlflow==3.17.2"  # 3.18.0 needs an mlflow-tracing 3.18.0 not on the index
)

# Python 3.12: the servers' own pins resolve there (pyenv's build, else one on PATH).
find_python() {
    local candidate
    if command -v pyenv >/dev/null 2>&1; then
        for candidate in "$(pyenv root)"/versions/3.12.*/bin/python3.12; do
            [ -x "$candidate" ] && { echo "$candidate"; return; }
        done
    fi
    command -v python3.12 || { echo "error: no python3.12 for the server venvs" >&2; exit 1; }
}
PYTHON="$(find_python)"

build() {
    local name="$1" spec="$2" dir="$ROOT/$1"
    if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$spec" ]; then
        echo "servers: $name is installed ($spec)"
        return
    fi
    echo "servers: installing $name ($spec) into $dir"
    local start=$SECONDS
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    # pip's output goes to a log beside the venv; shown only when the install fails.
    local log="$ROOT/$name.log"
    # shellcheck disable=SC2086  # the spec is a list of requirements
    if ! { "$dir/bin/python" -m pip install --upgrade pip \
           && "$dir/bin/python" -m pip install $spec; } >"$log" 2>&1; then
        grep -v "is ignored: it is neither" "$log" | tail -20 >&2
        echo "error: installing $name failed (full log: $log)" >&2
        exit 1
    fi
    echo "$spec" > "$dir/.installed"
    echo "servers: $name took $((SECONDS - start)) s"
}

mkdir -p "$ROOT"
for name in "${!SERVERS[@]}"; do
    build "$name" "${SERVERS[$name]}"
done
