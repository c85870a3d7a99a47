/**
 * The messages between the standalone page (app.ts, the main thread) and the worker that runs the
 * model (worker.ts). The model runs in a dedicated worker because the wasm backend's calling thread
 * blocks in Atomics.wait during a step, which a page's main thread may not do. Both files import
 * this one for its types only.
 */
import type { Normalize } from '../../data/dataset.ts';

export type BackendName = 'wasm' | 'webgpu';

/** What the page says about an error: the runtime's KilnError message and hint. */
export interface PageError {
  message: string;
  hint?: string;
}

/** A backend the bundle holds, and whether this browser can run it. */
export interface BackendChoice {
  name: BackendName;
  /** Whether it can run here; `why` says why not (or, for webgpu, which adapter). */
  usable: boolean;
  why: string;
  /** webgpu: the adapter is a software rasterizer (SwiftShader, llvmpipe): it works, slowly. */
  software?: boolean;
}

/** The bundle and this browser, as the worker finds them before opening the model. */
export interface BundleInfo {
  name: string;
  file: string;
  kilnVersion: string;
  input: number[];
  classes: number;
  batchSize: number;
  epochs: number;
  optimizer: string;
  normalize: Normalize;
  /** The dataset the bundle carries; null: the page asks for the four IDX files. */
  data: { name: string; trainCount: number; testCount: number } | null;
  /** Training and test image counts the steps were compiled for. */
  counts: { train: number; test: number };
  backends: BackendChoice[];
  /** The backend to open unless the user picks another: the faster one that runs here. */
  defaultBackend: BackendName | null;
  /** wasm thread counts the bundle holds modules for. */
  threadCounts: number[];
  crossOriginIsolated: boolean;
  cores: number;
}

/** The test digits the page shows with their predicted class after each epoch. */
export interface TestDigits {
  /** n×(channels·rows·cols) pixels, 0..255, each image CHW (a plane per channel) as the IDX file holds it. */
  pixels: Uint8Array;
  labels: number[];
  channels: number;
  rows: number;
  cols: number;
}

/** Page → worker. */
export type ToWorker =
  | { type: 'open'; backend: BackendName; threads?: number }
  | { type: 'data'; files: Record<'trainImages' | 'trainLabels' | 'testImages' | 'testLabels', Uint8Array>; names: Record<'trainImages' | 'trainLabels' | 'testImages' | 'testLabels', string> }
  | { type: 'train'; epochs: number; maxSteps?: number }
  | { type: 'stop' }
  /** One image of the model's input shape, pixels 0..255; answered with 'prediction' of the same id. */
  | { type: 'predict'; id: number; pixels: Float32Array }
  | { type: 'saveWeights' }
  | { type: 'loadWeights'; bytes: Uint8Array; name: string };

/** Worker → page. */
export type FromWorker =
  | { type: 'info'; info: BundleInfo }
  | { type: 'opened'; backend: BackendName; threads: number; description: string; why: string; software: boolean }
  | { type: 'data'; name: string; trainCount: number; testCount: number; digits: TestDigits }
  /** Steps since the last progress message: `losses[i]` is step `firstStep + i`'s loss. */
  | { type: 'progress'; firstStep: number; losses: number[]; step: number; epoch: number; batch: number; batches: number; totalSteps: number; imagesPerSec: number; runningAccuracy: number }
  | { type: 'epoch'; epoch: number; trainLoss: number; testLoss: number; testAccuracy: number; seconds: number; partial: boolean }
  /** The predicted class of each test digit (after opening, each epoch, and loading weights). */
  | { type: 'digits'; predicted: number[]; after: string }
  | { type: 'trained'; stopped: boolean; steps: number; epoch: number; seconds: number }
  | { type: 'prediction'; id: number; probs: number[] }
  | { type: 'weights'; bytes: Uint8Array }
  | { type: 'weightsLoaded'; name: string }
  | { type: 'error'; error: PageError; fatal: boolean };
