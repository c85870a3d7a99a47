/**
 * A string that is equal for equal values: JSON, except the numbers JSON.stringify would merge
 * (Infinity, -Infinity and NaN all become null, -0 becomes 0), written as `{"num":"-Infinity"}`.
 * For keys that dedupe nodes and expression steps: `x.minimum(Infinity).maximum(-Infinity)`
 * must keep two constants.
 */
export function valueKey(v: unknown): string {
  return JSON.stringify(v, (_, x: unknown) => (typeof x === 'number' && (!Number.isFinite(x) || Object.is(x, -0)) ? { num: Object.is(x, -0) ? '-0' : String(x) } : x));
}
