// Package audit reads the audit configuration file, evaluates its rules
// against session lists, and reloads it while the worker runs.
//
// # The file
//
// A YAML mapping with one key, audits: a list of audits. Each audit names
// which nodes of one DCS instance to scan, when, and the rules every snapshot
// of those nodes is checked against. Decoding is strict: an unknown or
// repeated key is an error naming the key and its line (with the closest
// known key), and every value is validated with its field named, e.g.
//
//	audit config /etc/dcsjobs/audits.yml: line 7: unknown field "idle_session" in audit "orders-cache" rules (did you mean "idle_sessions"?)
//	audit config /etc/dcsjobs/audits.yml: line 6: audit "orders-cache": schedule "*/15 * * *" is invalid: expected exactly 5 fields, found 4: [*/15 * * *]
//
// All problems are listed (up to 20), separated by "; ". An empty file is an
// error (a truncated write should not silently stop every audit); write
// "audits: []" for none. Anchors and aliases may be used for values; merge
// keys ("<<") are not supported.
//
// Fields of an audit:
//
//	name         required; unique; ^[a-z0-9][a-z0-9_-]{0,31}$ (it labels metrics)
//	instance     required; the DCS instance id
//	nodes        a list of node ids, or
//	all_nodes    true: every node the API lists for the instance at each run
//	             (exactly one of nodes and all_nodes: true)
//	schedule     required; a 5-field cron spec ("*/15 * * * *"), @hourly,
//	             @daily, @weekly, @monthly, or "@every 15m" (at least 1m);
//	             optional "TZ=Area/City " prefix; read as asynq's scheduler does
//	clean_cache  ScanClients' clean_cache flag; default false
//	retention    how long this audit's snapshots are kept, a Go duration
//	             (720h, not 30d); 0 or absent: the worker's RETENTION
//	rules        optional; an absent rule is off
//
// Rules (each results.Finding carries the rule name in parentheses):
//
//	idle_sessions: {longer_than: D, max: N}   (idle_sessions)
//	    more than N (default 0) sessions idle longer than D (at least 1s)
//	max_sessions_per_client_ip: N             (sessions_per_client_ip)
//	    a client IP with more than N (at least 1) sessions; counts client IPs
//	allowed_cidrs: [CIDR or IP, ...]          (client_outside_cidrs)
//	    a session whose client IP is in none of them (IPv4 and IPv6;
//	    ::ffff:a.b.c.d matches as a.b.c.d; an addr that is no IP is outside)
//	max_share_of_maxclients: S                (sessions_near_limit)
//	    more sessions than S × maxclients, S in (0, 1]; exactly S × maxclients
//	    (rounded down) is no violation. maxclients is the node's as DCS reports
//	    it, or max_clients: N in the rules, which takes precedence
//	new_clients: true                         (new_clients)
//	    sessions present now that were absent from the previous snapshot
//
// A complete example (testdata/audits.yml):
//
//	# dcsjobs audit configuration: AUDIT_CONFIG=/etc/dcsjobs/audits.yml
//	# Reloaded on SIGHUP and when the file changes; an invalid file is refused and
//	# the previous configuration stays (dcsjobs_audit_config_last_reload_successful 0).
//	audits:
//	  # Two nodes of one instance, every 15 minutes, with every rule.
//	  - name: orders-cache
//	    instance: 5560df16-cebf-4473-95c4-d1b573c16e79
//	    nodes:
//	      - 8f7ee181-88e2-49b7-a4bf-81f18f93a135
//	      - 0b4c1a2e-6f7d-4e3a-9c1b-2d5e8f7a6b4c
//	    schedule: "@every 15m"
//	    clean_cache: true
//	    retention: 720h                      # keep this audit's snapshots 30 days
//	    rules:
//	      idle_sessions: {longer_than: 30m, max: 0}
//	      max_sessions_per_client_ip: 200
//	      allowed_cidrs: [10.0.0.0/8, 192.168.0.0/16, "fd00::/8"]
//	      max_share_of_maxclients: 0.8       # of maxclients as DCS reports it
//	      new_clients: true
//
//	  # Every node the API lists for the instance (proxies of a Proxy Cluster),
//	  # nightly at 03:30 UTC, against an explicit connection limit.
//	  - name: sessions-proxy
//	    instance: 3c9a7e21-5b8f-4d6c-a1e2-7f0b9d8c6e5a
//	    all_nodes: true
//	    schedule: "TZ=UTC 30 3 * * *"
//	    rules:
//	      idle_sessions:
//	        longer_than: 2h
//	        max: 50
//	      max_share_of_maxclients: 0.9
//	      max_clients: 10000
//
//	  # A snapshot every hour, no rules: history and metrics only.
//	  - name: payments
//	    instance: 9d2f4b6a-1c3e-4a5b-8d7f-0e9c2b4a6d8f
//	    nodes: [4e6a8c0b-2d4f-4b6a-9c8e-1f3a5c7e9b0d]
//	    schedule: "@hourly"
//
// # Findings
//
// [Audit.Evaluate] runs the rules on one session list in a single pass (about
// 2 ms for 50,000 sessions on a 2-core machine; see BenchmarkEvaluate) and returns a
// results.Finding per violated rule, ordered by rule name, with at most
// MaxExamples sorted examples.
//
// # Reloading
//
// [NewWatcher] loads the file once: an error there should stop start-up.
// After [Watcher.Start] it reloads on SIGHUP and when the file changes; a
// reload that fails keeps the previous configuration, logs the error once
// (until it changes or a reload succeeds) and sets
// dcsjobs_audit_config_last_reload_successful to 0, as blackbox_exporter and
// Prometheus do for their config files. [Watcher.Current] is a lock-free read.
//
// The file is polled (read and hashed every second) rather than watched with
// fsnotify. Polling needs no dependency and sees every way a file is
// replaced alike: written in place, renamed over, or swapped through the
// "..data" symlink of a Kubernetes ConfigMap volume, which inotify only
// reports for the directory and which breaks a watch on the file itself.
// Reading a few KiB once a second costs nothing, and a second of delay is
// nothing next to audit schedules of minutes. A change is applied once the
// content has been the same for two polls, so a file caught half-written by a
// non-atomic writer is not reported as a failed reload.
package audit
