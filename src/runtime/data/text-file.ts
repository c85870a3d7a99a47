/** Text datasets from disk in Node: reading the file that text.ts splits into windows. */
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { dataError } from './dataset.ts';
import { textDataset, type TextDataset } from './text.ts';

/** The file at `path` (as the user named it) as a text dataset of windows of `context` bytes. */
export function loadTextDataset(path: string, opts: { context: number; valFraction: number }): TextDataset {
  let bytes: Uint8Array | 'directory';
  try {
    bytes = statSync(path).isDirectory() ? 'directory' : readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw dataError(`${path}: ${code === 'ENOENT' ? 'file not found' : `cannot read the file (${(e as Error).message})`}`, 'check the path of the text file (--data FILE.txt, or training.data)');
  }
  if (bytes === 'directory') throw dataError(`${path}: is a directory; a text dataset is one file`, 'pass the text file itself: --data FILE.txt');
  return textDataset(bytes, path, basename(path), opts);
}
