import { copy } from './copy.ts';

/** Same data, new shape: usually compiled to nothing (see views.ts), else a copy. */
export const reshape = copy;
