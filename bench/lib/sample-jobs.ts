// The four job tables and a ready row for each (inputs already at RunningHub, so
// nothing is downloaded): what the benchmarks queue when only scheduling is measured.
export const jobTables = ['upscaler_jobs', 'pose_changer_jobs', 'veste_ai_jobs', 'video_upscaler_jobs'] as const
export type JobTable = (typeof jobTables)[number]

/** `(columns) values (...)` of one ready job per table, for `insert into <table> …`. */
export const readyJobValues: Record<JobTable, string> = {
  upscaler_jobs: `(input_file_name) values ('in.png')`,
  pose_changer_jobs: `(person_file_name, reference_file_name) values ('person.png', 'pose.png')`,
  veste_ai_jobs: `(person_file_name, clothing_file_name) values ('person.png', 'shirt.png')`,
  video_upscaler_jobs: `(input_file_name) values ('in.mp4')`,
}
