// The benches' median: of the finite numbers in `xs` (a missing sample is skipped), the
// middle one, or the mean of the middle two; null when there are none.
export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
