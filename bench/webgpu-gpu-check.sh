#!/usr/bin/env bash
# The webgpu backend on a real GPU (README.md, "WebGPU"): on a Linux x86-64 machine with an NVIDIA
# GPU and no Node install, with a carried Node binary and this repository's node_modules (which
# hold the webgpu package's prebuilt dawn.node):
#
#   NODE=/path/to/node-v20.x-linux-x64/bin/node bench/webgpu-gpu-check.sh
#
# 1. the parity suite on the GPU through Dawn's Vulkan backend (every op, every kernel of the
#    compiled sample and random-model programs, every sample's training step, the trainer);
# 2. one MNIST epoch of SimpleCNN at batch 64 (938 steps), timed with data upload: adapter,
#    per-step time, epoch time, images/s, dispatches per step, against the targets (H100: epoch
#    <= 1 s, <= 8 dispatches per step). The figures also go to bench/webgpu-epoch.json.
#
# Exits non-zero if anything fails or a target is missed. Prepare the copy where there is
# network: `npm ci` on any Linux x86-64 machine (optional dependencies included), then carry the
# folder and a Node 20 binary (nodejs.org: node-v20.*-linux-x64.tar.xz, bin/node).
#
# Options: --skip-parity (the epoch only); anything after `--` goes to bench/webgpu-epoch.ts
# (e.g. `-- --steps 24`). KILN_WEBGPU_BACKEND=opengl runs it on llvmpipe, to try the script
# without a GPU (the targets then fail: a software adapter is no GPU measurement).
set -euo pipefail
cd "$(dirname "$0")/.."

parity=1
epoch_args=()
while (($#)); do
  case "$1" in
    --skip-parity) parity=0 ;;
    --) shift; epoch_args=("$@"); break ;;
    *) echo "webgpu-gpu-check: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

fail() {
  echo "webgpu-gpu-check: $*" >&2
  exit 1
}

NODE="${NODE:-$(command -v node || true)}"
[[ -n "$NODE" && -x "$NODE" ]] || fail "no Node binary: set NODE to a carried Node 20 linux-x64 binary (nodejs.org: node-v20.*-linux-x64.tar.xz, bin/node)"
"$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || fail "NODE is $("$NODE" --version); kiln needs Node 20 or newer"
[[ "$(uname -sm)" == "Linux x86_64" ]] || fail "this check is for Linux x86-64, not $(uname -sm)"
[[ -f node_modules/webgpu/dist/linux-x64/dawn.node ]] || fail "node_modules/webgpu/dist/linux-x64/dawn.node is missing: run 'npm ci' (optional dependencies included) where there is network and carry node_modules"
[[ -f node_modules/vitest/vitest.mjs ]] || fail "node_modules/vitest is missing: carry the node_modules of 'npm ci' (dev dependencies included)"
export KILN_WEBGPU_BACKEND="${KILN_WEBGPU_BACKEND:-vulkan}"

# Dawn reaches an NVIDIA GPU through Vulkan: the loader (libvulkan.so.1, Debian/Ubuntu package
# libvulkan1) and the driver's ICD (nvidia_icd.json, from the driver; in a container only with
# NVIDIA_DRIVER_CAPABILITIES including graphics).
echo "node    $("$NODE" --version) ($NODE)"
if [[ "$KILN_WEBGPU_BACKEND" == vulkan ]]; then
  loader=""
  IFS=: read -r -a libdirs <<<"${LD_LIBRARY_PATH:-}"
  for d in "${libdirs[@]}" /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
    [[ -n "$d" && -e "$d/libvulkan.so.1" ]] && loader="$d/libvulkan.so.1" && break
  done
  [[ -n "$loader" ]] || fail "no Vulkan loader (libvulkan.so.1): install libvulkan1 (apt-get install libvulkan1), or carry libvulkan.so.1 and point LD_LIBRARY_PATH at it"
  icd=""
  for f in /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json; do
    [[ -e "$f" ]] && icd="$f" && break
  done
  [[ -n "$icd" ]] || echo "webgpu-gpu-check: warning: no NVIDIA Vulkan ICD (nvidia_icd.json) found; in a container set NVIDIA_DRIVER_CAPABILITIES=compute,graphics (or all)" >&2
  echo "vulkan  $loader${icd:+, ICD $icd}"
fi
if command -v nvidia-smi >/dev/null; then echo "gpu     $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"; fi

# Only the chosen Dawn backend (Vulkan: never a silent fall-back to llvmpipe), and an adapter is
# required: the tests fail rather than skip without one.
export KILN_REQUIRE_WEBGPU=1

status=0
if ((parity)); then
  echo
  echo "== 1. parity suite, webgpu backend"
  "$NODE" node_modules/vitest/vitest.mjs run test/runtime/parity test/runtime/webgpu -t webgpu || status=1
fi

echo
echo "== 2. one MNIST epoch of SimpleCNN, batch 64"
# Bundled with esbuild (from node_modules) as bin/kiln.js does for the CLI: Node 20 runs no TypeScript.
mkdir -p dist
"$NODE" --input-type=module -e "import { buildSync } from 'esbuild'; buildSync({ entryPoints: ['bench/webgpu-epoch.ts'], bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', outfile: 'dist/webgpu-epoch.mjs', logLevel: 'error' });"
"$NODE" dist/webgpu-epoch.mjs --model samples/simple-cnn.ts --targets --json bench/webgpu-epoch.json "${epoch_args[@]}" || status=1
exit "$status"
