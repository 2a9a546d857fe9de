package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
	"github.com/dcsjobs/dcsjobs/results"
	"github.com/dcsjobs/dcsjobs/tasks"
)

// progressLine is one line of -wait progress: queued → scanning → polling n → fetching → done.
func progressLine(st *tasks.Status) string {
	r := st.Request
	if len(st.Children) > 0 {
		done := 0
		for _, c := range st.Children {
			if c.State.Terminal() {
				done++
			}
		}
		return fmt.Sprintf("%s: %d of %d nodes finished", st.State(), done, len(st.Children))
	}
	switch r.State {
	case tasks.StatePolling:
		return fmt.Sprintf("polling %d (job %s)", r.Polls, r.JobID)
	case tasks.StateAttached:
		return "attached to the running scan of request " + r.Leader
	case tasks.StateFailed:
		return "failed: " + r.Error
	}
	return string(r.State)
}

// printResult prints the snapshot(s) of an ended request, or returns its failure.
func (a *app) printResult(ctx context.Context, st *tasks.Status, format string) error {
	reqs := []tasks.Request{*st.Request}
	if st.Request.AllNodes {
		reqs = st.Children
	}
	var snaps []*results.Snapshot
	var failures []string
	for _, r := range reqs {
		switch r.State {
		case tasks.StateDone:
			s, err := a.store.Get(ctx, r.InstanceID, r.NodeID, r.SnapshotID)
			if err != nil {
				return fmt.Errorf("request %s: snapshot %s: %w", r.ID, r.SnapshotID, err)
			}
			snaps = append(snaps, s)
		case tasks.StateFailed:
			failures = append(failures, fmt.Sprintf("request %s (node %s) failed: %s", r.ID, r.NodeID, r.Error))
		default:
			return failedError{fmt.Sprintf("request %s is %s, not finished (see: enqueue status %s)", st.Request.ID, st.State(), st.Request.ID)}
		}
	}
	if st.Request.AllNodes && !st.State().Terminal() { // dispatched, or nodes not yet listed
		return failedError{fmt.Sprintf("request %s is not finished", st.Request.ID)}
	}
	if err := printSnapshots(a.stdout, snaps, format, st.Request.AllNodes); err != nil {
		return err
	}
	if len(failures) > 0 {
		return failedError{strings.Join(failures, "\n")}
	}
	if len(reqs) == 0 && st.Request.State == tasks.StateFailed {
		return failedError{fmt.Sprintf("request %s failed: %s", st.Request.ID, st.Request.Error)}
	}
	return nil
}

// csvHeader is the DCS field names, after the node id.
var csvHeader = []string{"node_id", "id", "addr", "fd", "name", "cmd", "age", "idle", "db", "flags", "sub", "psub",
	"multi", "qbuf", "qbuf_free", "obl", "oll", "omem", "events", "network", "peer", "user"}

func csvRow(node string, c dcsapi.ClientInfo) []string {
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	return []string{node, c.ID, c.Addr, c.FD, c.Name, c.Cmd, i(c.Age), i(c.Idle), c.DB, c.Flags, i(c.Sub), i(c.Psub),
		i(c.Multi), i(c.Qbuf), i(c.QbufFree), i(c.Obl), i(c.Oll), i(c.Omem), c.Events, c.Network, c.Peer, c.User}
}

func printSnapshots(w io.Writer, snaps []*results.Snapshot, format string, many bool) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if many {
			return enc.Encode(snaps)
		}
		if len(snaps) == 0 {
			return nil
		}
		return enc.Encode(snaps[0])
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write(csvHeader)
		for _, s := range snaps {
			for _, c := range s.Clients {
				_ = cw.Write(csvRow(s.Request.NodeID, c))
			}
		}
		cw.Flush()
		return cw.Error()
	}
	for i, s := range snaps {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printSnapshotTable(w, s)
	}
	return nil
}

func printSnapshotTable(w io.Writer, s *results.Snapshot) {
	sum := s.Summary
	fmt.Fprintf(w, "instance %s  node %s  snapshot %s\n", s.Request.InstanceID, s.Request.NodeID, s.ID)
	fmt.Fprintf(w, "DCS time %s  fetched %s  job %s (%s, %d polls)\n", orRaw(s.DCSTime, s.DCSTimeRaw),
		s.FetchedAt.Format(time.RFC3339), s.Job.ID, s.Job.CompletionPath, s.Job.Polls)
	fmt.Fprintf(w, "sessions %d  client IPs %d  idle over %v: %d", s.Count, sum.DistinctClientIPs, time.Duration(sum.IdleThreshold)*time.Second, sum.IdleOver)
	if s.Diff != nil {
		fmt.Fprintf(w, "  since previous: +%d -%d", s.Diff.NewCount, s.Diff.GoneCount)
	}
	fmt.Fprintln(w)
	if s.Request.Audit != "" {
		fmt.Fprintf(w, "audit %s: ", s.Request.Audit)
		if len(s.Findings) == 0 {
			fmt.Fprintln(w, "no rule violated")
		}
	}
	for _, f := range s.Findings {
		fmt.Fprintf(w, "FINDING %s (%s): %s", f.Rule, f.Audit, f.Message)
		if len(f.Examples) > 0 {
			fmt.Fprintf(w, " e.g. %s", strings.Join(f.Examples, ", "))
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDR\tNAME\tUSER\tDB\tCMD\tAGE\tIDLE")
	for _, c := range s.Clients {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Addr, c.Name, c.User, c.DB, c.Cmd,
			time.Duration(c.Age)*time.Second, time.Duration(c.Idle)*time.Second)
	}
	_ = tw.Flush()
}

func orRaw(t time.Time, raw string) string {
	if t.IsZero() {
		return raw
	}
	return t.Format(time.RFC3339)
}

func printStatus(w io.Writer, st *tasks.Status, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			State State `json:"state"`
			*tasks.Status
		}{State(st.State()), st})
	}
	r := st.Request
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("request", r.ID)
	row("state", string(st.State()))
	row("instance", r.InstanceID)
	row("node", r.NodeID)
	row("origin", r.Origin)
	row("requested", r.RequestedAt.Format(time.RFC3339))
	row("job", r.JobID)
	if r.Polls > 0 {
		row("polls", strconv.Itoa(r.Polls))
	}
	row("completion", r.CompletionPath)
	row("snapshot", r.SnapshotID)
	row("error", r.Error)
	if r.Leader != "" && r.Leader != r.ID {
		row("shares scan of", r.Leader)
	}
	_ = tw.Flush()
	if len(st.Children) > 0 {
		fmt.Fprintln(w, "\nnodes:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, c := range st.Children {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.NodeID, c.State, c.Error)
		}
		_ = tw.Flush()
	}
	if len(st.Events) > 0 {
		fmt.Fprintln(w, "\nevents:")
		for _, e := range st.Events {
			fmt.Fprintf(w, "  %s  %-11s %s\n", e.At.Format("15:04:05.000"), e.State, e.Detail)
		}
	}
	return nil
}

// State is a tasks.State for JSON output.
type State = tasks.State

func printHistory(w io.Writer, h []results.Meta, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(h)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SNAPSHOT\tFETCHED\tSESSIONS\tCLIENT IPS\tIDLE OVER\tNEW\tGONE\tORIGIN\tFINDINGS")
	for _, m := range h {
		newC, gone := "-", "-"
		if m.Diff != nil {
			newC, gone = strconv.Itoa(m.Diff.NewCount), strconv.Itoa(m.Diff.GoneCount)
		}
		origin := m.Request.Origin
		if m.Request.Audit != "" {
			origin += ":" + m.Request.Audit
		}
		findings := "-"
		if len(m.Findings) > 0 {
			rules := make([]string, len(m.Findings))
			for i, f := range m.Findings {
				rules[i] = fmt.Sprintf("%s(%d)", f.Rule, f.Count)
			}
			findings = strings.Join(rules, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", m.ID, m.FetchedAt.Format(time.RFC3339), m.Count,
			m.Summary.DistinctClientIPs, m.Summary.IdleOver, newC, gone, origin, findings)
	}
	return tw.Flush()
}
