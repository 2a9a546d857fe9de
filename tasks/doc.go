// Package tasks is the query pipeline: asynq task types, their payloads and
// handlers, and the request records that make every step idempotent.
//
// A request for the sessions of one DCS node goes through these tasks:
//
//	dcs:scan   → ScanClients starts a DCS job; its job_id is persisted first
//	dcs:poll   → ShowJobInfo (or, when /jobs does not know the job, ListClients'
//	             `time`) until the job completes; one task per poll, each with a
//	             deterministic task id poll:<request>:<n>
//	dcs:fetch  → every page of ListClients, summarised and stored (package results)
//	dcs:discover → (all-nodes requests) lists the instance's nodes and submits one
//	             child request per node
//
// The request record in Redis, not the task, is the source of truth: every
// handler first reads it and does nothing if its step already happened, so
// asynq's at-least-once delivery (a killed worker's task runs again about a
// minute later) never starts a second DCS scan for a request nor stores a
// second result. At most one scan runs per (instance, node): a request that
// arrives while one runs is attached to it and gets the same result.
//
// Errors are sorted by dcsapi.Classify: throttling is retried after the advised
// delay without counting as a failure, transient errors back off
// exponentially (bounded by MaxRetry), permanent errors, failed jobs and
// malformed payloads end the request at once (the task is archived with the
// reason). Every request ends in exactly one terminal state: done or failed.
package tasks
