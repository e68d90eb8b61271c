// Slot turnover from a simulator's timeline: each task end (a slot freed) is
// paired with the next task start after it (the slot refilled); the gap is the
// time the slot stood empty. Both lists must be sorted ascending.
export function turnoverGaps(endTimes: readonly number[], startTimes: readonly number[]): number[] {
  const gaps: number[] = []
  let next = 0
  for (const end of endTimes) {
    while (next < startTimes.length && startTimes[next]! < end) next++
    if (next >= startTimes.length) break
    gaps.push(startTimes[next]! - end)
    next++
  }
  return gaps
}
