#!/usr/bin/env bash
# Fails when clang-format (the repository's .clang-format) would change any
# .cpp or .h file git tracks or would add (outside a checkout: every one under
# ROOT but build*/), naming each file and line. Fix with
#   clang-format -i FILE
# Usage: scripts/check-format.sh [ROOT]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
format=$(command -v clang-format || command -v clang-format-14 || true)
if [[ -z $format ]]; then
  echo "check-format: clang-format not found (bash scripts/setup.sh installs it)" >&2
  exit 1
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -d '' files < <(git ls-files -z --cached --others --exclude-standard -- '*.cpp' '*.h')
else
  mapfile -d '' files < <(find . -path './build*' -prune -o -name '.git' -prune -o \
    \( -name '*.cpp' -o -name '*.h' \) -type f -print0)
fi
existing=()
for f in "${files[@]}"; do
  [[ -f $f ]] && existing+=("$f")
done
if printf '%s\0' "${existing[@]}" | xargs -0 -n 64 "$format" --dry-run --Werror; then
  echo "check-format: ${#existing[@]} files formatted as .clang-format says"
else
  echo "check-format: the files above differ from .clang-format (clang-format -i FILE)" >&2
  exit 1
fi
