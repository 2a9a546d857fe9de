package results

import (
	"slices"
	"strings"
	"time"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

// DefaultMaxList is the cap on Diff.New and Diff.Gone when Compare is given 0.
const DefaultMaxList = 1000

// ClientRef is a session named in a diff.
type ClientRef struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	Name string `json:"name"`
	User string `json:"user"`
	Cmd  string `json:"cmd"`
	Age  int64  `json:"age"`
	Idle int64  `json:"idle"`
}

// Diff is what changed between two session lists of a node. A session is
// identified by (id, addr): DCS client ids are unique per server run, and the
// addr keeps a restart that reuses ids from hiding changes. Sessions present in
// both lists are Unchanged, whatever their other fields.
type Diff struct {
	// PreviousID and PreviousTime name the snapshot compared against; Compare
	// leaves them empty for the caller to fill.
	PreviousID   string    `json:"previous_id"`
	PreviousTime time.Time `json:"previous_time"`
	NewCount     int       `json:"new_count"`
	GoneCount    int       `json:"gone_count"`
	Unchanged    int       `json:"unchanged"`
	// New and Gone list at most maxList sessions each, sorted by addr then id
	// (the first ones in that order, whatever the counts).
	New  []ClientRef `json:"new"`
	Gone []ClientRef `json:"gone"`
}

type identity struct{ id, addr string }

// Compare diffs two session lists in O(n) map operations (plus sorting the
// listed sessions). maxList caps New and Gone: 0 means DefaultMaxList,
// negative means no cap. A session listed twice in one list counts once.
func Compare(prev, cur []dcsapi.ClientInfo, maxList int) Diff {
	if maxList == 0 {
		maxList = DefaultMaxList
	}
	prevSet := make(map[identity]struct{}, len(prev))
	for i := range prev {
		prevSet[identity{prev[i].ID, prev[i].Addr}] = struct{}{}
	}
	curSet := make(map[identity]struct{}, len(cur))
	var d Diff
	var newIdx, goneIdx []int
	for i := range cur {
		k := identity{cur[i].ID, cur[i].Addr}
		if _, dup := curSet[k]; dup {
			continue
		}
		curSet[k] = struct{}{}
		if _, ok := prevSet[k]; ok {
			d.Unchanged++
		} else {
			newIdx = append(newIdx, i)
		}
	}
	for i := range prev {
		k := identity{prev[i].ID, prev[i].Addr}
		if _, ok := curSet[k]; ok {
			continue
		}
		if _, seen := prevSet[k]; !seen { // listed twice in prev: already counted
			continue
		}
		delete(prevSet, k)
		goneIdx = append(goneIdx, i)
	}
	d.NewCount, d.GoneCount = len(newIdx), len(goneIdx)
	d.New = refs(cur, newIdx, maxList)
	d.Gone = refs(prev, goneIdx, maxList)
	return d
}

func refs(list []dcsapi.ClientInfo, idx []int, maxList int) []ClientRef {
	if len(idx) == 0 {
		return nil
	}
	slices.SortFunc(idx, func(a, b int) int {
		if c := strings.Compare(list[a].Addr, list[b].Addr); c != 0 {
			return c
		}
		return compareIDs(list[a].ID, list[b].ID)
	})
	if maxList > 0 && len(idx) > maxList {
		idx = idx[:maxList]
	}
	out := make([]ClientRef, len(idx))
	for j, i := range idx {
		c := &list[i]
		out[j] = ClientRef{ID: c.ID, Addr: c.Addr, Name: c.Name, User: c.User, Cmd: c.Cmd, Age: c.Age, Idle: c.Idle}
	}
	return out
}
