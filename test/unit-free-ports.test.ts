// Ports for the servers a test (or `rhpool demo`) starts: asked for together, they are all
// different. Asked for one after the other they can repeat (a port freed by the first answer
// is handed out again), and a service whose PORT equals its ADMIN_PORT refuses to start.
import t from 'tap'
import { createServer } from 'node:net'
import { freePorts } from '../src/localdb/cluster.ts'

t.test('ports asked for together are all different, and free', async (t) => {
  const ports = await freePorts(200)
  t.equal(ports.length, 200)
  t.equal(new Set(ports).size, 200, 'no port twice')
  // Each one can be listened on right away (none is left held).
  for (const port of ports.slice(0, 20)) {
    await new Promise<void>((resolve, reject) => {
      const server = createServer()
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => server.close(() => resolve()))
    })
  }
})
