import { accessSync, constants } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { describe, it } from 'vitest';

// Headless Chromium for the browser tests: Debian's package (`apt-get install chromium`, which
// .ci/run installs) driven by playwright-core, which downloads no browser of its own.

/** The browser the tests drive; KILN_CHROMIUM points elsewhere. */
export const CHROMIUM_PATH = process.env.KILN_CHROMIUM ?? '/usr/bin/chromium';

/** Flags for every launch: no sandbox (root in CI), nothing that reaches the network or the disk's /dev/shm. */
export const BASE_FLAGS: readonly string[] = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/**
 * WebGPU on SwiftShader, Chromium's CPU Vulkan (libvk_swiftshader.so in the chromium package), so
 * `navigator.gpu.requestAdapter()` gives an adapter in headless mode on a machine with no GPU, and
 * the same one on a machine with a GPU. `--enable-unsafe-webgpu` is what turns WebGPU on for
 * Linux; without it the adapter is null. (`--enable-features=Vulkan` and `--use-angle=swiftshader`
 * are not needed for WebGPU; ANGLE on SwiftShader adds 0.3 s to the launch.)
 */
export const WEBGPU_FLAGS: readonly string[] = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

export interface LaunchOptions {
  /** Turn WebGPU on (SwiftShader); otherwise the GPU is off altogether (--disable-gpu). */
  webgpu?: boolean;
}

/** Whether the Chromium the tests drive is installed. */
export function browserAvailable(): boolean {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The flags `launchChromium` passes. */
export function chromiumFlags(opts: LaunchOptions = {}): string[] {
  return [...BASE_FLAGS, ...(opts.webgpu ? WEBGPU_FLAGS : ['--disable-gpu'])];
}

/** A headless Chromium; close it (`browser.close()`) in afterAll. */
export function launchChromium(opts: LaunchOptions = {}): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: chromiumFlags(opts), timeout: 30_000 });
}

const MISSING = `no Chromium at ${CHROMIUM_PATH}: install it with \`apt-get install chromium\` (or point KILN_CHROMIUM at one)`;

/**
 * `describe` for a suite that needs Chromium: skipped when it is not installed, unless
 * KILN_REQUIRE_BROWSER=1 (CI, which installs it), where the suite fails saying what to install.
 */
export function describeBrowser(name: string, fn: () => void): void {
  if (browserAvailable()) describe(name, fn);
  else if (process.env.KILN_REQUIRE_BROWSER) {
    describe(name, () => {
      it('needs Chromium', () => {
        throw new Error(`${MISSING}; KILN_REQUIRE_BROWSER is set, so this fails rather than skips`);
      });
    });
  } else describe.skip(`${name} (skipped: ${MISSING})`, fn);
}
