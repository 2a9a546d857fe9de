// Package results holds what a session audit produces: the [Snapshot] of one
// DCS node's client sessions, its [Summary] and its [Diff] with the node's
// previous snapshot, a compact binary codec ([Encode], [Decode]) and a Redis
// [Store].
//
// # Model
//
// A Snapshot is the session list (dcsapi.ClientInfo, with the DCS field
// names) that ListClients returned after a ScanClients job, together with the
// [Request] that asked for it (its ID is the snapshot's ID), the DCS [Job],
// the DCS "time" of the list and when it was fetched. [Summarize] counts it by
// client IP, db, user and last command (the top N of each, plus a tally of the
// rest, so totals add up), counts idle sessions and finds the oldest one.
// [Compare] diffs two lists by session identity (id, addr). Empty users,
// commands and dbs are counted under the key "" and shown as
// [EmptyKeyLabel] by [Count.DisplayKey].
//
// A worker builds one like this:
//
//	prev, err := store.Previous(ctx, inst, node, req.ID) // ErrNotFound for the first scan
//	snap := &results.Snapshot{ID: req.ID, Request: req, Job: job, DCSTime: list.Time.Time,
//		DCSTimeRaw: list.Time.Raw, FetchedAt: time.Now(), Count: int(list.Count), Clients: list.Clients}
//	snap.Summary = results.Summarize(snap.Clients, results.SummaryOptions{})
//	if err == nil {
//		d := results.Compare(prev.Clients, snap.Clients, 0)
//		d.PreviousID, d.PreviousTime = prev.ID, prev.Time()
//		snap.Diff = &d
//	}
//	err = store.Save(ctx, snap)
//
// # Key layout
//
// Every key of one node carries the hash tag {n:<instance>:<node>}, so a
// node's keys live in one Redis Cluster slot and are written in one MULTI:
//
//	<prefix>:{n:<inst>:<node>}:snap:<id>  encoded snapshot (Encode), TTL Retention
//	<prefix>:{n:<inst>:<node>}:meta:<id>  JSON Meta (snapshot without sessions), TTL Retention
//	<prefix>:{n:<inst>:<node>}:hist       ZSET of snapshot ids scored by Snapshot.Time in unix ms,
//	                                      trimmed to HistoryMax and Retention on each Save, TTL Retention
//	<prefix>:nodes                        ZSET of "<inst>/<node>" scored by its latest time, TTL Retention
//
// The global nodes index is only ever touched by single-key commands. History
// entries whose keys expired are skipped and removed when read. Instance and
// node ids may not contain ':', '/', '{', '}' or spaces, which would make keys
// of different nodes collide.
//
// # Codec
//
// An encoded snapshot is
//
//	"DCSS" | version (1) | compression (1 = zstd) | uvarint payload length | zstd frame (with checksum)
//
// and the payload is the snapshot's scalar fields, summary and diff (varints,
// length-prefixed strings, times as unix seconds and nanoseconds), then the
// sessions column by column, in field order. A string column is either a
// dictionary (distinct values in order of appearance, then one uvarint index
// per row, none when there is a single value) or, when every value is a
// canonical decimal number and they are mostly distinct (id, fd), an int
// column. The addr column is split into a dictionary of hosts and an int
// column of ports. An int column is zigzag varints, raw or as deltas from the
// previous row (whichever is smaller; ids and ages in connection order are
// nearly sorted), or a single value when constant. The id column is never
// constant, so a session count can be checked against the payload size before
// anything is allocated; Decode also bounds the payload by [MaxDecodedSize]
// and the sessions by [MaxSessions], and wraps every complaint in
// [ErrCorrupt]. Decode returns times in UTC.
//
// # Why a hand-written codec
//
// Session lists are very repetitive (a few subnets, names, commands and
// users) with a little entropy in each row (port, fd, age, idle), which a
// column layout isolates. Measured on the synthetic 10,000-session snapshot of
// the tests (realistic subnets, pools, names, commands; see gen_test.go):
//
//	JSON                       2,861,670 bytes
//	JSON, gzip -9                193,761 bytes (6.8%)
//	JSON, zstd best              204,259 bytes (7.1%)
//	this codec                   110,138 bytes (3.8%), 1.8x smaller than gzip'd JSON
//	  same sessions shuffled     167,562 bytes (5.9%)
//
// and 50,000 sessions encode to 531,223 bytes (3.7% of 14,362,377; gzip'd
// JSON 948,923). Encoding 10,000 sessions takes about 4.5 ms and decoding
// about 3 ms, against about 50 ms for json.Marshal plus gzip. Fixed-width byte
// planes for the number columns saved only 3% more and zstd's higher levels
// under 1% at twice the time, so neither is used.
package results
