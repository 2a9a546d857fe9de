// Package bench holds the end-to-end benchmark of the query pipeline
// (package tasks, run by worker.Start) against a plain three-task asynq chain
// (chain:scan → chain:poll → chain:fetch) that makes the same DCS calls and
// stores the session list as zstd-compressed JSON, a result of a size similar to the
// pipeline's encoded snapshot. It has no non-test code; run it with
//
//	go test -run '^$' -bench PipelineVsChain -benchtime 1x ./bench
//	BENCH_N=500 go test -run '^$' -bench PipelineVsChain -benchtime 1x ./bench
//
// (or make bench, which runs every package's benchmarks). Each side runs in
// its own process (the test binary re-executed) with its own redis-server,
// against its own DCS simulator served from the benchmark's process (same
// config and inventory, instant jobs, one node per request so that the
// pipeline's one-scan-per-node rule never merges requests), one side after
// the other, so that peak RSS and CPU are per side: after a short discarded
// warm-up run of each side, pipeline, chain, chain, pipeline, so that the
// drift of a noisy machine weighs on both alike. BENCH_INPROC=1 runs both
// sides in the benchmark's process instead (for -cpuprofile). The benchmark
// reports requests/s of both sides and their ratio, the latency from the DCS
// job's end_time to the stored result (p50, p99), the stored size of a
// 10,000-session snapshot against its JSON, and peak RSS. A small version
// runs as a test (TestPipelineVsChainSmoke), so it does not rot.
//
// Environment: BENCH_N (requests per run, default 1000; each side runs twice, in the order pipeline, chain, chain, pipeline unless BENCH_ORDER lists another), BENCH_CONCURRENCY
// (asynq concurrency of both sides, default 20 like the worker's),
// BENCH_JOB_MS (simulated job duration, default 2), BENCH_FSYNC (the
// redis-servers' appendfsync: everysec, Redis's default, or always, what
// the other tests use; default everysec), BENCH_CHAIN_RESULT (zstd, the
// default; gzip; or json: raw JSON, about 20 times the bytes),
// BENCH_INPROC.
package bench
