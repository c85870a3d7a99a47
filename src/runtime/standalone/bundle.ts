import { KilnError } from '../../ir/errors.ts';
import { parseManifest, type Manifest } from './manifest.ts';

/** Reads a bundle's files: from a folder in Node, over fetch in a page (or from any URL). */
export interface BundleFiles {
  /** The file's bytes, or undefined when it does not exist. */
  read(path: string): Promise<Uint8Array | undefined>;
  /** How messages name the file. */
  where(path: string): string;
}

const isNode = () => typeof process !== 'undefined' && typeof process.versions?.node === 'string';

function fromUrl(base: URL): BundleFiles {
  const dir = base.href.endsWith('/') ? base : new URL(`${base.href}/`);
  return {
    async read(path) {
      const res = await fetch(new URL(path, dir));
      if (res.status === 404) return undefined;
      if (!res.ok) throw new KilnError('bundle', `${new URL(path, dir).href}: HTTP ${res.status} ${res.statusText}`, undefined, 'check that the bundle folder is served whole (kiln serve DIR)');
      return new Uint8Array(await res.arrayBuffer());
    },
    where: (path) => new URL(path, dir).href,
  };
}

async function fromFolder(dir: string): Promise<BundleFiles> {
  // Imported here: this module runs in pages too, which have no `node:` modules.
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  return {
    async read(path) {
      try {
        return new Uint8Array(await readFile(join(dir, path)));
      } catch (e) {
        if ((e as { code?: string }).code === 'ENOENT') return undefined;
        throw new KilnError('bundle', `${join(dir, path)}: cannot read (${(e as Error).message})`);
      }
    },
    where: (path) => join(dir, path),
  };
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

const REBUILD = 'the bundle was changed or copied incompletely: rebuild it with `kiln compile MODEL.ts --standalone`, or copy the whole folder again';

/**
 * A standalone bundle (`kiln compile --standalone`): its manifest, and its files read on demand,
 * each checked against the manifest's SHA-256 before use.
 */
export class StandaloneBundle {
  private constructor(
    readonly manifest: Manifest,
    private readonly files: BundleFiles,
  ) {}

  /** A folder path (Node) or a URL (anywhere; relative URLs resolve against the page). */
  static async load(location: string | URL | BundleFiles): Promise<StandaloneBundle> {
    const files =
      typeof location === 'object' && 'read' in location
        ? location
        : location instanceof URL || /^[a-z][a-z0-9+.-]*:\/\//i.test(location) || !isNode()
          ? fromUrl(new URL(String(location), typeof location === 'string' && globalThis.location ? globalThis.location.href : undefined))
          : await fromFolder(location);
    const text = await files.read('manifest.json');
    if (!text) throw new KilnError('bundle', `${files.where('manifest.json')} not found: not a kiln standalone bundle`, undefined, 'make one with `kiln compile MODEL.ts --standalone`');
    return new StandaloneBundle(parseManifest(new TextDecoder().decode(text), files.where('manifest.json')), files);
  }

  /** Where a file of the bundle is, for messages. */
  where(path: string): string {
    return this.files.where(path);
  }

  /** A file's bytes, refused when missing, unlisted or not the bytes the bundle was written with. */
  async file(path: string): Promise<Uint8Array> {
    const want = this.manifest.files[path];
    if (want === undefined) throw new KilnError('bundle', `${this.where(path)} is not listed in the bundle's manifest.json`, undefined, REBUILD);
    const bytes = await this.files.read(path);
    if (!bytes) throw new KilnError('bundle', `${this.where(path)} is missing from the bundle`, undefined, REBUILD);
    const got = await sha256(bytes);
    if (got !== want) throw new KilnError('bundle', `${this.where(path)} has changed since the bundle was written (SHA-256 ${got.slice(0, 12)}…, manifest.json says ${want.slice(0, 12)}…)`, undefined, REBUILD);
    return bytes;
  }

  async text(path: string): Promise<string> {
    return new TextDecoder().decode(await this.file(path));
  }
}
