import type { RefKernel } from './common.ts';

export const reshapeKernels: Record<string, RefKernel> = {
  // Row-major data is unchanged by a view: copy it.
  reshape: (out, [x]) => {
    out.set(x!);
  },
};
