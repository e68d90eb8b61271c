// Read-only status over HTTP, straight from the SQL functions: the same
// answer an operator gets from psql. Names only, never a key.
import type { FastifyInstance } from 'fastify'
import type { Sql } from '../db/connect.ts'
import { jobView, poolStatus, tools } from '../db/rhpool.ts'

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export function registerStatusRoutes(app: FastifyInstance, deps: { sql: Sql }): void {
  const { sql } = deps

  app.get('/status', async () => {
    return await poolStatus(sql)
  })

  app.get<{ Params: { table: string; id: string } }>('/jobs/:table/:id', async (request, reply) => {
    const { table, id } = request.params
    const known = await tools(sql, 'job_table')
    if (!known.some((t) => t.job_table === table)) {
      return reply.code(404).send({ error: `no job table ${JSON.stringify(table)}; known: ${known.map((k) => k.job_table).join(', ')}` })
    }
    if (!uuidPattern.test(id)) return reply.code(400).send({ error: `job id must be a uuid, got ${JSON.stringify(id.slice(0, 80))}` })
    const job = await jobView(sql, table, id)
    if (!job) return reply.code(404).send({ error: `no job ${id} in ${table}` })
    return job
  })
}
