/** Checkpoints and weights as files in Node: the file I/O around checkpoint.ts's bytes. */
import type { Backend } from './backend.ts';
import { checkpointBytes, restoreCheckpoint, restoreWeights, weightsBytes, type RunIdentity, type TrainPosition } from './checkpoint.ts';
import { readSafetensorsBytes, writeSafetensorsBytes } from './safetensors-file.ts';

export function saveCheckpoint(path: string, backend: Backend, position: TrainPosition, identity: RunIdentity): void {
  writeSafetensorsBytes(path, checkpointBytes(backend, position, identity));
}

export function loadCheckpoint(path: string, backend: Backend, identity: RunIdentity): TrainPosition {
  return restoreCheckpoint(readSafetensorsBytes(path), path, backend, identity);
}

export function saveWeights(path: string, backend: Backend, names: readonly string[]): void {
  writeSafetensorsBytes(path, weightsBytes(backend, names), 'weights file');
}

export function loadWeights(path: string, backend: Backend, names: readonly string[]): void {
  restoreWeights(readSafetensorsBytes(path, 'weights file'), path, backend, names);
}
