import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startServer, type ServerHandle } from '../../src/cli/serve.ts';
import { kiln } from '../cli/helpers.ts';
import { describeBrowser, launchChromium } from './chromium.ts';

// The standalone page of a model of colour images (test/fixtures/models/colour-mlp.ts, input
// [3, 8, 8]) trained on a 4-d IDX dataset [N, 3, 8, 8] written here: its test images are drawn in
// colour, and it has no drawing pad (which draws MNIST's 28×28 grey digits). A [1, 28, 28] model's
// page (samples/mlp.ts) keeps the pad, and refuses the colour files, naming both shapes.
//
// The screenshot of the trained colour page goes to tmp/colour-page.png (git ignores tmp/).

interface PageState {
  state: 'idle' | 'loading' | 'training' | 'done' | 'error';
  losses: number[];
  error?: { message: string; hint?: string };
}

declare const window: { kilnPage: PageState & { predictDrawing(p: number[]): Promise<number[]> } };

/** Colours of the images: the background's is the label; a 4×4 square of the next one sits in the middle. */
const PALETTE: [number, number, number][] = [
  [255, 0, 0], [0, 200, 0], [0, 0, 255], [255, 220, 0], [0, 220, 220],
  [230, 0, 230], [255, 130, 0], [120, 60, 200], [255, 255, 255], [120, 120, 120],
];
const TRAIN = 12;
const TEST = 10;

/** Image `k`, CHW bytes: background PALETTE[k % 10], middle square PALETTE[(k + 3) % 10]. */
function image(k: number): Uint8Array {
  const out = new Uint8Array(3 * 64);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const inner = x >= 2 && x < 6 && y >= 2 && y < 6;
        out[c * 64 + y * 8 + x] = PALETTE[(inner ? k + 3 : k) % 10]![c]!;
      }
    }
  }
  return out;
}

function idx(magic: number, dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return gzipSync(Buffer.concat([head, data]));
}

/** The four files of the colour dataset, gzipped, in `dir` (MNIST's names: the page matches them). */
function colourData(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const [split, n] of [['train', TRAIN], ['t10k', TEST]] as const) {
    const images = new Uint8Array(n * 192);
    for (let k = 0; k < n; k++) images.set(image(k), k * 192);
    writeFileSync(join(dir, `${split}-images-idx3-ubyte.gz`), idx(0x804, [n, 3, 8, 8], images));
    writeFileSync(join(dir, `${split}-labels-idx1-ubyte.gz`), idx(0x801, [n], Uint8Array.from({ length: n }, (_, k) => k % 10)));
  }
  return dir;
}

const tmp = mkdtempSync(join(tmpdir(), 'kiln-colour-page-'));
const colourBundle = join(tmp, 'colour.kiln');
const mnistBundle = join(tmp, 'mlp.kiln');
let data: string;
let browser: Browser | undefined;
const servers: ServerHandle[] = [];

async function openPage(dir: string, query: string, states: PageState['state'][]): Promise<{ page: Page; state: PageState }> {
  const s = await startServer(dir, { port: 0, isolation: true });
  servers.push(s);
  const page = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(`${s.url}${query}`);
  await page.waitForFunction((want) => !!window.kilnPage && (want.includes(window.kilnPage.state) || window.kilnPage.state === 'error'), states, { timeout: 60_000, polling: 100 });
  expect(problems).toEqual([]);
  return { page, state: await page.evaluate(() => window.kilnPage as PageState) };
}

/** Every test image's canvas, as RGB bytes (alpha dropped). */
function canvasPixels(page: Page): Promise<number[][]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLCanvasElement>('.digit-cell canvas'), (c) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      return Array.from(d).filter((_, i) => i % 4 !== 3);
    }),
  );
}

describeBrowser('the standalone page of a colour model', () => {
  beforeAll(async () => {
    data = colourData(join(tmp, 'colour-data'));
    const c = kiln(['compile', 'test/fixtures/models/colour-mlp.ts', '--standalone', '-o', colourBundle, '--data', data, '--backend', 'wasm', '--threads', '1']);
    expect(c.code, c.stderr).toBe(0);
    const m = kiln(['compile', 'samples/mlp.ts', '--standalone', '-o', mnistBundle, '--data', 'none', '--backend', 'wasm', '--threads', '1']);
    expect(m.code, m.stderr).toBe(0);
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.allSettled(servers.map((s) => s.close()));
    rmSync(tmp, { recursive: true, force: true });
  });

  it('trains, draws the test images in colour, and has no drawing pad', async () => {
    const { page, state } = await openPage(colourBundle, '?maxSteps=2&autostart=1', ['done']);
    expect(state.error).toBeUndefined();
    expect(state.losses).toHaveLength(2);

    // Each canvas holds its image's three planes as RGB: image 0's background is red (R 255, G 0).
    const shown = await canvasPixels(page);
    expect(shown).toHaveLength(TEST);
    shown.forEach((rgb, k) => {
      const chw = image(k);
      expect(rgb).toEqual(Array.from({ length: 64 * 3 }, (_, i) => chw[(i % 3) * 64 + Math.floor(i / 3)]!));
    });
    expect(shown[0]!.slice(0, 3)).toEqual([255, 0, 0]);
    expect(await page.evaluate(() => document.querySelectorAll('.digit-cell.right, .digit-cell.wrong').length)).toBe(TEST);
    expect(await page.textContent('#digits-title')).toBe('Test images');

    // No pad; a line says why.
    expect(await page.isVisible('#pad')).toBe(false);
    expect(await page.isVisible('#col-side')).toBe(false);
    expect(await page.textContent('#pad-off')).toBe("No drawing pad: it draws 28×28 grey digits, MNIST's input [1, 28, 28]; this model takes [3, 8, 8].");
    const refused = await page.evaluate(() => window.kilnPage.predictDrawing(new Array(784).fill(0)).then(() => 'answered', (e: Error) => e.message));
    expect(refused).toBe('this model takes inputs of shape [3, 8, 8], not 28×28 digits: its page has no drawing pad');

    const shot = join(process.cwd(), 'tmp', 'colour-page.png');
    mkdirSync(join(shot, '..'), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
    await page.close();
  });

  it('a [1, 28, 28] model keeps the pad, and refuses colour files naming both shapes', async () => {
    const { page, state } = await openPage(mnistBundle, '', ['idle']);
    expect(state.error).toBeUndefined();
    expect(await page.isVisible('#pad')).toBe(true);
    expect(await page.isVisible('#pad-off')).toBe(false);
    expect(await page.textContent('#digits-title')).toBe('Test digits');

    await page.setInputFiles('#data-files', readdirSync(data).map((f) => join(data, f)));
    await page.waitForFunction(() => !!window.kilnPage.error, undefined, { timeout: 10_000 });
    const error = await page.evaluate(() => window.kilnPage.error!);
    expect(error.message).toBe("the dataset's images have shape [3, 8, 8]; this model takes inputs of shape [1, 28, 28]");
    expect(error.hint).toMatch(/^give a dataset of the shape the model was compiled for/);
    expect(await page.isDisabled('#train')).toBe(true);
    await page.close();
  });
});
