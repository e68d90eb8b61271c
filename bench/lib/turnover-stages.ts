// Where a slot's turnover goes, stage by stage: each task end (a slot freed)
// is paired with the next task start after it, as turnover-gaps.ts does, and
// the gap is cut at what the simulator and rhpool's rows saw in between:
//   callback sent     the simulator sends the TASK_END (its own delay);
//   callback answered the webhook route committed it and answered 200;
//   job finished      rhpool finished the job (after confirming it with
//                     RunningHub's query, by default): its completed_at;
//   next claimed      a dispatcher claimed the next job: its claimed_at;
//   next created      the simulator has the next create request.
// A stage is the time from the previous mark to its own. PostgreSQL's now()
// is the start of the transaction that wrote a mark, so a mark is a little
// early by its transaction's length; both clocks are this machine's.

export interface TurnoverTask {
  taskId: string
  createdAt: number
  endedAt: number
}

export interface TurnoverMarks {
  /** First TASK_END sent for the task, and when the route answered it (ms). */
  callback?: { sentAt: number; answeredAt: number }
  /** The job's completed_at and claimed_at, ms since the epoch. */
  finishedAt?: number
  claimedAt?: number
}

export const turnoverStages = ['callback sent', 'callback answered', 'job finished', 'next claimed', 'next created'] as const
export type TurnoverStage = (typeof turnoverStages)[number]

/** Each stage's durations (ms), one per gap whose marks are all known. */
export function turnoverStageTimes(tasks: TurnoverTask[], marksOf: (taskId: string) => TurnoverMarks): Map<TurnoverStage, number[]> {
  const byEnd = [...tasks].sort((a, b) => a.endedAt - b.endedAt)
  const byStart = [...tasks].sort((a, b) => a.createdAt - b.createdAt)
  const stages = new Map<TurnoverStage, number[]>(turnoverStages.map((s) => [s, []]))
  let next = 0
  for (const ended of byEnd) {
    while (next < byStart.length && byStart[next]!.createdAt < ended.endedAt) next++
    if (next >= byStart.length) break
    const started = byStart[next++]!
    const done = marksOf(ended.taskId)
    const claimed = marksOf(started.taskId).claimedAt
    if (!done.callback || done.finishedAt === undefined || claimed === undefined) continue
    const marks = [ended.endedAt, done.callback.sentAt, done.callback.answeredAt, done.finishedAt, claimed, started.createdAt]
    turnoverStages.forEach((stage, i) => stages.get(stage)!.push(marks[i + 1]! - marks[i]!))
  }
  return stages
}
