// Prometheus metrics. One registry per process; counters are incremented
// where things happen, gauges of the pool are read from the database on scrape.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export class Metrics {
  readonly registry = new Registry()
  readonly claims = new Counter({
    name: 'rhpool_claims_total',
    help: 'Jobs claimed by this process',
    labelNames: ['account'],
    registers: [this.registry],
  })
  readonly claimCalls = new Counter({
    name: 'rhpool_claim_calls_total',
    help: 'Claims this process asked the database for, by whether they claimed anything',
    labelNames: ['result'],
    registers: [this.registry],
  })
  readonly submissions = new Counter({
    name: 'rhpool_submissions_total',
    help: 'Submissions to RunningHub by result class',
    labelNames: ['account', 'result'],
    registers: [this.registry],
  })
  readonly webhooks = new Counter({
    name: 'rhpool_webhooks_total',
    help: 'Webhook deliveries by outcome',
    labelNames: ['outcome'],
    registers: [this.registry],
  })
  readonly turnover = new Histogram({
    name: 'rhpool_submission_latency_seconds',
    help: 'From a job becoming claimable (or its slot freeing) to RunningHub accepting it',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  })
  readonly maintenance = new Counter({
    name: 'rhpool_maintenance_actions_total',
    help: 'Repairs done by maintenance',
    labelNames: ['action'],
    registers: [this.registry],
  })

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'rhpool_process_' })
  }
}
