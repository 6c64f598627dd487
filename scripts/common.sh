# Shared by the scripts: repository root, and setup when something is missing.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ensure_setup() {
  if ! bash "$ROOT/scripts/setup.sh" --check >/dev/null 2>&1; then
    bash "$ROOT/scripts/setup.sh"
  fi
}
