#!/usr/bin/env bash
# Checks the GitHub workflows (.github/workflows) with actionlint: syntax, expressions, the
# inputs of well-known actions, job dependencies, and (when shellcheck is installed) the shell of
# every `run:` step. actionlint is built once from the Go module proxy, at the version that
# tools/actionlint/go.mod pins (go.sum checks it), into a cache outside the repository.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's|^\tgithub.com/rhysd/actionlint \(v[^ ]*\).*|\1|p' "$root/tools/actionlint/go.mod")
[ -n "$version" ] || { echo "actionlint: no version in tools/actionlint/go.mod" >&2; exit 1; }
tools=${XDG_CACHE_HOME:-$HOME/.cache}/xero-operator/tools
lint="$tools/actionlint-$version/actionlint"
if [ ! -x "$lint" ]; then
  command -v go >/dev/null || { echo "actionlint: Go is required to build actionlint" >&2; exit 1; }
  echo "actionlint: building actionlint $version" >&2
  mkdir -p "$tools"
  stage=$(mktemp -d "$tools/.actionlint.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  (cd "$root/tools/actionlint" && CGO_ENABLED=0 GOTOOLCHAIN=local \
    go build -trimpath -ldflags "-s -w" -o "$stage/actionlint" github.com/rhysd/actionlint/cmd/actionlint)
  mkdir -p "$(dirname "$lint")"
  mv "$stage/actionlint" "$lint"
fi
cd "$root"
"$lint" -no-color
echo "actionlint $version: .github/workflows clean" >&2
