/**
 * Compiles a kernel module with V8's optimising compiler from the start (Node only).
 *
 * V8 compiles wasm with its baseline compiler, Liftoff, and moves a function to TurboFan once it
 * has used a budget of time, and only for that function's next call. kiln's modules are a few
 * long-running kernels: an epoch's evaluation calls each of its kernels ten times, so all of it
 * ran as baseline code (0.33 s for MNIST's 10,000 test images against 0.22 s optimised), and the
 * first training steps likewise. TurboFan on SimpleCNN's three modules costs ~40 ms more than
 * Liftoff. The flag is set around this one compilation only: binaryen's own 10 MB of wasm, compiled
 * eagerly by TurboFan, would take seconds. Both tiers compute the same results (relaxed_madd is FMA
 * in both when the CPU has it), so which one runs does not change a number. node:v8 is imported
 * on call, as the standalone runtime that also uses this must load in a page.
 */
export async function optimizingCompiler(): Promise<(bytes: Uint8Array) => WebAssembly.Module> {
  const { setFlagsFromString } = await import('node:v8');
  return (bytes) => {
    setFlagsFromString('--no-liftoff');
    try {
      return new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    } finally {
      setFlagsFromString('--liftoff');
    }
  };
}
