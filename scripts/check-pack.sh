#!/usr/bin/env bash
# Packs kiln as `npm publish` would, installs the tarball into an empty folder outside the
# repository with production dependencies only (--omit=dev), and runs the installed `kiln` on a
# model file written in that folder: --help, train, compile, ir, and train from the bundle.
# Needs the npm registry (or a warm npm cache) for the dependencies.
# Usage: scripts/check-pack.sh [work-dir]   (default: a fresh folder under /tmp)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /tmp/kiln-pack-XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
case "$work/" in "$root"/*) echo "check-pack: the work folder must lie outside the repository" >&2; exit 2 ;; esac

step() { printf '\n== %s\n' "$*" >&2; }

step "npm pack"
tarball=$(cd "$root" && npm pack --silent --pack-destination "$work" | tail -n 1)
ls -l "$work/$tarball" >&2
name=$(node -p "require('$root/package.json').name")

cd "$work"
rm -rf node_modules package.json package-lock.json model.ts model.kiln weights.safetensors
step "npm install --omit=dev $tarball (in $work)"
npm init -y >/dev/null
npm install --omit=dev --no-audit --no-fund --prefer-offline "./$tarball"

step "no dev dependency was installed"
for dev in $(node -p "Object.keys(require('$root/package.json').devDependencies).join(' ')"); do
  if [ -e "node_modules/$dev" ]; then echo "check-pack: dev dependency $dev is installed" >&2; exit 1; fi
done
for absent in scripts test bench tsconfig.json; do
  if [ -e "node_modules/$name/$absent" ]; then echo "check-pack: the package carries $absent" >&2; exit 1; fi
done

# A model file of the user's own, outside the repository, importing from 'kiln'.
cp "$root/samples/simple-cnn.ts" model.ts

step "npx kiln --help"
npx kiln --help
step "npx $name --help (the package name runs the same command)"
npx "$name" --help >/dev/null
step "npx kiln train model.ts --max-steps 20"
npx kiln train model.ts --max-steps 20 --save weights.safetensors
step "npx kiln compile model.ts"
npx kiln compile model.ts -o model.kiln
step "npx kiln ir model.ts"
npx kiln ir model.ts | head -n 12
step "npx kiln train model.kiln --max-steps 5"
npx kiln train model.kiln --max-steps 5

step "ok: $name installs from $tarball and runs outside the repository"
