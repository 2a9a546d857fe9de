package results

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

// Codec format constants. See the package documentation for the layout.
const (
	// Magic opens every encoded snapshot.
	Magic = "DCSS"
	// CodecVersion is the version Encode writes. Decode reads it and every
	// older one: version 1 had no audit name and no findings.
	CodecVersion = 2
	// MaxDecodedSize bounds the decompressed payload Decode accepts (64 MiB;
	// a 50,000-session snapshot is about 1.3 MB).
	MaxDecodedSize = 64 << 20
	// MaxSessions bounds the session count Decode accepts.
	MaxSessions = 1 << 20
)

const compressionZstd = 1

// ErrCorrupt is wrapped by every Decode error about the input itself.
var ErrCorrupt = errors.New("corrupt snapshot encoding")

var (
	zenc = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(err) // options are constant
		}
		return e
	})
	zdec = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxDecodedSize),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// Encode serialises a snapshot: the magic, the version, the compression, the
// payload length, then the zstd-compressed payload with the clients stored
// column by column. Times are kept to the nanosecond but lose their location
// and monotonic reading: Decode returns them in UTC.
func Encode(s *Snapshot) ([]byte, error) {
	if s == nil {
		return nil, errors.New("results: encode: nil snapshot")
	}
	if len(s.Clients) > MaxSessions {
		return nil, fmt.Errorf("results: encode: %d sessions, more than MaxSessions (%d)", len(s.Clients), MaxSessions)
	}
	w := &writer{b: make([]byte, 0, 4096+len(s.Clients)*24)}
	w.snapshotHead(s)
	w.clients(s.Clients)
	if len(w.b) > MaxDecodedSize {
		return nil, fmt.Errorf("results: encode: payload of %d bytes is more than MaxDecodedSize (%d)", len(w.b), MaxDecodedSize)
	}
	out := make([]byte, 0, 16+len(w.b)/4)
	out = append(out, Magic...)
	out = append(out, CodecVersion, compressionZstd)
	out = binary.AppendUvarint(out, uint64(len(w.b)))
	return zenc().EncodeAll(w.b, out), nil
}

// Decode parses what Encode wrote. Any malformed input gives an error
// wrapping ErrCorrupt; allocations are bounded by MaxDecodedSize and
// MaxSessions whatever lengths the input claims.
func Decode(b []byte) (*Snapshot, error) {
	if len(b) < len(Magic)+3 {
		return nil, corrupt("input is %d bytes, shorter than the header", len(b))
	}
	if string(b[:len(Magic)]) != Magic {
		return nil, corrupt("bad magic %q, want %q", b[:len(Magic)], Magic)
	}
	version := b[len(Magic)]
	if version < 1 || version > CodecVersion {
		return nil, corrupt("unsupported version %d (this build reads 1 to %d)", version, CodecVersion)
	}
	if c := b[len(Magic)+1]; c != compressionZstd {
		return nil, corrupt("unknown compression %d", c)
	}
	rest := b[len(Magic)+2:]
	rawLen, n := binary.Uvarint(rest)
	if n <= 0 {
		return nil, corrupt("bad payload length")
	}
	if rawLen > MaxDecodedSize {
		return nil, corrupt("payload length %d is more than MaxDecodedSize (%d)", rawLen, MaxDecodedSize)
	}
	rest = rest[n:]
	var h zstd.Header
	if err := h.Decode(rest); err != nil {
		return nil, corrupt("zstd header: %v", err)
	}
	if h.HasFCS && h.FrameContentSize != rawLen {
		return nil, corrupt("zstd frame holds %d bytes, header says %d", h.FrameContentSize, rawLen)
	}
	raw, err := zdec().DecodeAll(rest, make([]byte, 0, rawLen))
	if err != nil {
		return nil, corrupt("zstd: %v", err)
	}
	if uint64(len(raw)) != rawLen {
		return nil, corrupt("payload is %d bytes, header says %d", len(raw), rawLen)
	}
	r := &reader{b: raw, version: version}
	s := &Snapshot{}
	r.snapshotHead(s)
	s.Clients = r.clients()
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d trailing bytes", len(r.b)-r.off)
	}
	if r.err != nil {
		return nil, r.err
	}
	return s, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("results: decode: %s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
}

// ---- writer ----

type writer struct{ b []byte }

func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) str(s string)     { w.uvarint(uint64(len(s))); w.b = append(w.b, s...) }
func (w *writer) boolean(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

// length writes a slice length as n+1, 0 standing for nil, so that nil and
// empty slices survive a round trip.
func (w *writer) length(n int, isNil bool) {
	if isNil {
		w.uvarint(0)
		return
	}
	w.uvarint(uint64(n) + 1)
}

func (w *writer) time(t time.Time) {
	if t.IsZero() {
		w.b = append(w.b, 0)
		return
	}
	w.b = append(w.b, 1)
	w.varint(t.Unix())
	w.uvarint(uint64(t.Nanosecond()))
}

func (w *writer) snapshotHead(s *Snapshot) {
	w.str(s.ID)
	q := &s.Request
	w.str(q.ID)
	w.str(q.InstanceID)
	w.str(q.NodeID)
	w.boolean(q.CleanCache)
	w.str(q.Origin)
	w.time(q.RequestedAt)
	j := &s.Job
	w.str(j.ID)
	w.str(j.Status)
	w.time(j.BeginTime)
	w.time(j.EndTime)
	w.str(j.CompletionPath)
	w.varint(int64(j.Polls))
	w.time(s.DCSTime)
	w.str(s.DCSTimeRaw)
	w.time(s.FetchedAt)
	w.varint(int64(s.Count))
	w.summary(&s.Summary)
	if s.Diff == nil {
		w.boolean(false)
	} else {
		w.boolean(true)
		w.diff(s.Diff)
	}
	// Version 2.
	w.str(s.Request.Audit)
	w.findings(s.Findings)
}

func (w *writer) findings(fs []Finding) {
	w.length(len(fs), fs == nil)
	for i := range fs {
		f := &fs[i]
		w.str(f.Audit)
		w.str(f.Rule)
		w.str(f.Message)
		w.varint(int64(f.Count))
		w.length(len(f.Examples), f.Examples == nil)
		for _, e := range f.Examples {
			w.str(e)
		}
	}
}

func (w *writer) summary(m *Summary) {
	w.varint(int64(m.Total))
	w.varint(int64(m.DistinctClientIPs))
	for _, b := range []*Breakdown{&m.ByClientIP, &m.ByDB, &m.ByUser, &m.ByCmd} {
		w.varint(int64(b.Keys))
		w.length(len(b.Top), b.Top == nil)
		for _, c := range b.Top {
			w.str(c.Key)
			w.varint(int64(c.Sessions))
		}
		w.varint(int64(b.OthersKeys))
		w.varint(int64(b.OthersSessions))
	}
	w.varint(m.IdleThreshold)
	w.varint(int64(m.IdleOver))
	o := &m.OldestConnection
	w.str(o.ID)
	w.str(o.Addr)
	w.str(o.Name)
	w.str(o.User)
	w.varint(o.Age)
	w.varint(m.MaxIdle)
}

func (w *writer) diff(d *Diff) {
	w.str(d.PreviousID)
	w.time(d.PreviousTime)
	w.varint(int64(d.NewCount))
	w.varint(int64(d.GoneCount))
	w.varint(int64(d.Unchanged))
	for _, l := range [][]ClientRef{d.New, d.Gone} {
		w.length(len(l), l == nil)
		for i := range l {
			c := &l[i]
			w.str(c.ID)
			w.str(c.Addr)
			w.str(c.Name)
			w.str(c.User)
			w.str(c.Cmd)
			w.varint(c.Age)
			w.varint(c.Idle)
		}
	}
}

// Column kinds.
const (
	strDict  = 0 // dictionary, then one index per row (omitted when the dictionary has one entry)
	strInt   = 1 // every value is a canonical decimal int64: an int column
	strSplit = 2 // "host:port": a dictionary column of hosts, then an int column of ports (-1: no port)

	intRaw   = 0 // zigzag varint per row
	intDelta = 1 // zigzag varint of the difference with the previous row (the first from 0)
	intConst = 2 // one zigzag varint for every row
)

// Every column but the first may be constant and take no bytes per row; the
// first (id) always takes at least one, which lets Decode check the session
// count against the payload size before allocating.
func (w *writer) clients(cs []dcsapi.ClientInfo) {
	w.length(len(cs), cs == nil)
	if len(cs) == 0 {
		return
	}
	n := len(cs)
	strs := make([]string, n)
	ints := make([]int64, n)
	scol := func(get func(*dcsapi.ClientInfo) string, first bool) {
		for i := range cs {
			strs[i] = get(&cs[i])
		}
		w.strColumn(strs, ints, first)
	}
	icol := func(get func(*dcsapi.ClientInfo) int64) {
		for i := range cs {
			ints[i] = get(&cs[i])
		}
		w.intColumn(ints, true)
	}
	scol(func(c *dcsapi.ClientInfo) string { return c.ID }, true)
	w.addrColumn(cs, strs, ints)
	scol(func(c *dcsapi.ClientInfo) string { return c.FD }, false)
	scol(func(c *dcsapi.ClientInfo) string { return c.Name }, false)
	scol(func(c *dcsapi.ClientInfo) string { return c.Cmd }, false)
	icol(func(c *dcsapi.ClientInfo) int64 { return c.Age })
	icol(func(c *dcsapi.ClientInfo) int64 { return c.Idle })
	scol(func(c *dcsapi.ClientInfo) string { return c.DB }, false)
	scol(func(c *dcsapi.ClientInfo) string { return c.Flags }, false)
	icol(func(c *dcsapi.ClientInfo) int64 { return c.Sub })
	icol(func(c *dcsapi.ClientInfo) int64 { return c.Psub })
	icol(func(c *dcsapi.ClientInfo) int64 { return c.Multi })
	icol(func(c *dcsapi.ClientInfo) int64 { return c.Qbuf })
	icol(func(c *dcsapi.ClientInfo) int64 { return c.QbufFree })
	icol(func(c *dcsapi.ClientInfo) int64 { return c.Obl })
	icol(func(c *dcsapi.ClientInfo) int64 { return c.Oll })
	icol(func(c *dcsapi.ClientInfo) int64 { return c.Omem })
	scol(func(c *dcsapi.ClientInfo) string { return c.Events }, false)
	scol(func(c *dcsapi.ClientInfo) string { return c.Network }, false)
	scol(func(c *dcsapi.ClientInfo) string { return c.Peer }, false)
	scol(func(c *dcsapi.ClientInfo) string { return c.User }, false)
}

// strColumn picks the int form for columns of distinct numbers (id, fd) and a
// dictionary for repetitive ones (db, cmd, user...). The dictionary of an
// all-number column is abandoned as soon as it is too large to pay.
func (w *writer) strColumn(strs []string, ints []int64, first bool) {
	allInt := true
	for i, s := range strs {
		v, ok := canonicalInt(s)
		if !ok {
			allInt = false
			break
		}
		ints[i] = v
	}
	if allInt {
		limit := len(strs) / 8
		if first {
			limit = 0
		}
		if dict, idx := dictionary(strs, limit); dict != nil {
			w.b = append(w.b, strDict)
			w.dictColumn(dict, idx, !first)
			return
		}
		w.b = append(w.b, strInt)
		w.intColumn(ints, !first)
		return
	}
	dict, idx := dictionary(strs, -1)
	w.b = append(w.b, strDict)
	w.dictColumn(dict, idx, !first)
}

func (w *writer) dictColumn(dict []string, idx []uint32, allowConst bool) {
	w.uvarint(uint64(len(dict)))
	for _, s := range dict {
		w.str(s)
	}
	if len(dict) == 1 && allowConst {
		return
	}
	for _, i := range idx {
		w.uvarint(uint64(i))
	}
}

// addrColumn splits "host:port" so that the hosts, far fewer than the
// sessions, go to a dictionary and the ports to an int column.
func (w *writer) addrColumn(cs []dcsapi.ClientInfo, hosts []string, ports []int64) {
	for i := range cs {
		hosts[i], ports[i] = splitPort(cs[i].Addr)
	}
	w.b = append(w.b, strSplit)
	dict, idx := dictionary(hosts, -1)
	w.dictColumn(dict, idx, true)
	w.intColumn(ports, true)
}

// splitPort splits at the last colon when what follows is a canonical port
// (0..65535 without leading zeros); port -1 means the whole string is host.
func splitPort(addr string) (string, int64) {
	for i := len(addr) - 1; i >= 0 && i >= len(addr)-6; i-- {
		if addr[i] == ':' {
			p := addr[i+1:]
			if v, ok := canonicalInt(p); ok && v >= 0 && v <= 65535 && p[0] != '-' {
				return addr[:i], v
			}
			break
		}
	}
	return addr, -1
}

func decimalLen(v int64) int {
	n := 1
	if v < 0 {
		n++
	}
	for v >= 10 || v <= -10 {
		v /= 10
		n++
	}
	return n
}

// dictionary maps strs to indices into their distinct values, in order of
// first appearance. With limit >= 0 it gives up (nil) past limit entries.
func dictionary(strs []string, limit int) ([]string, []uint32) {
	m := make(map[string]uint32, 16)
	var dict []string
	idx := make([]uint32, len(strs))
	for i, s := range strs {
		j, ok := m[s]
		if !ok {
			if limit >= 0 && len(dict) >= limit {
				return nil, nil
			}
			j = uint32(len(dict))
			m[s] = j
			dict = append(dict, s)
		}
		idx[i] = j
	}
	return dict, idx
}

// canonicalInt parses s if it is exactly how strconv.FormatInt prints an
// int64 ("0", "42", "-7"; not "007", "-0", "+1" or "").
func canonicalInt(s string) (int64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	neg := s[0] == '-'
	d := s
	if neg {
		d = s[1:]
	}
	if d == "" || (d[0] == '0' && (len(d) > 1 || neg)) {
		return 0, false
	}
	var u uint64
	for i := 0; i < len(d); i++ {
		c := d[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true // -(1<<63) wraps to itself, which is right
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// intColumn writes the smallest of the raw, delta and (when allowed)
// constant forms, by varint size.
func (w *writer) intColumn(v []int64, allowConst bool) {
	var rawSize, deltaSize int
	constant := true
	prev := int64(0)
	for _, x := range v {
		rawSize += varintLen(x)
		deltaSize += varintLen(x - prev)
		prev = x
		if x != v[0] {
			constant = false
		}
	}
	switch {
	case constant && allowConst:
		w.b = append(w.b, intConst)
		w.varint(v[0])
	case deltaSize < rawSize:
		w.b = append(w.b, intDelta)
		prev = 0
		for _, x := range v {
			w.varint(x - prev)
			prev = x
		}
	default:
		w.b = append(w.b, intRaw)
		for _, x := range v {
			w.varint(x)
		}
	}
}

func varintLen(x int64) int {
	u := uint64(x<<1) ^ uint64(x>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// ---- reader ----

type reader struct {
	version byte
	b       []byte
	off     int
	err     error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = corrupt("at payload offset %d: %s", r.off, fmt.Sprintf(format, args...))
	}
}

func (r *reader) byte1() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.off += n
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.off += n
	return v
}

func (r *reader) int() int {
	v := r.varint()
	if int64(int(v)) != v {
		r.fail("int %d out of range", v)
		return 0
	}
	return int(v)
}

func (r *reader) boolean() bool {
	switch r.byte1() {
	case 0:
		return false
	case 1:
		return true
	default:
		r.fail("bad bool")
		return false
	}
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail("string of %d bytes, %d left", n, len(r.b)-r.off)
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}

// length reads what writer.length wrote and checks that n elements of at
// least minSize bytes each can fit in what is left, so that no untrusted
// length allocates more than the payload justifies. ok is false for nil.
func (r *reader) length(minSize int) (n int, ok bool) {
	v := r.uvarint()
	if r.err != nil || v == 0 {
		return 0, false
	}
	v--
	if v > uint64((len(r.b)-r.off)/minSize) {
		r.fail("%d elements cannot fit in %d bytes", v, len(r.b)-r.off)
		return 0, false
	}
	return int(v), true
}

func (r *reader) time() time.Time {
	switch r.byte1() {
	case 0:
		return time.Time{}
	case 1:
		sec := r.varint()
		nsec := r.uvarint()
		if nsec >= 1e9 {
			r.fail("nanoseconds %d out of range", nsec)
		}
		if r.err != nil {
			return time.Time{}
		}
		return time.Unix(sec, int64(nsec)).UTC()
	default:
		r.fail("bad time tag")
		return time.Time{}
	}
}

func (r *reader) snapshotHead(s *Snapshot) {
	s.ID = r.str()
	q := &s.Request
	q.ID = r.str()
	q.InstanceID = r.str()
	q.NodeID = r.str()
	q.CleanCache = r.boolean()
	q.Origin = r.str()
	q.RequestedAt = r.time()
	j := &s.Job
	j.ID = r.str()
	j.Status = r.str()
	j.BeginTime = r.time()
	j.EndTime = r.time()
	j.CompletionPath = r.str()
	j.Polls = r.int()
	s.DCSTime = r.time()
	s.DCSTimeRaw = r.str()
	s.FetchedAt = r.time()
	s.Count = r.int()
	r.summary(&s.Summary)
	if r.boolean() {
		s.Diff = &Diff{}
		r.diff(s.Diff)
	}
	if r.version >= 2 {
		s.Request.Audit = r.str()
		s.Findings = r.findings()
	}
}

func (r *reader) findings() []Finding {
	n, ok := r.length(3)
	if !ok {
		return nil
	}
	fs := make([]Finding, n)
	for i := range fs {
		f := &fs[i]
		f.Audit = r.str()
		f.Rule = r.str()
		f.Message = r.str()
		f.Count = r.int()
		if m, ok := r.length(1); ok {
			f.Examples = make([]string, m)
			for j := range f.Examples {
				f.Examples[j] = r.str()
			}
		}
	}
	return fs
}

func (r *reader) summary(m *Summary) {
	m.Total = r.int()
	m.DistinctClientIPs = r.int()
	for _, b := range []*Breakdown{&m.ByClientIP, &m.ByDB, &m.ByUser, &m.ByCmd} {
		b.Keys = r.int()
		if n, ok := r.length(2); ok {
			b.Top = make([]Count, n)
			for i := range b.Top {
				b.Top[i] = Count{Key: r.str(), Sessions: r.int()}
			}
		}
		b.OthersKeys = r.int()
		b.OthersSessions = r.int()
	}
	m.IdleThreshold = r.varint()
	m.IdleOver = r.int()
	o := &m.OldestConnection
	o.ID = r.str()
	o.Addr = r.str()
	o.Name = r.str()
	o.User = r.str()
	o.Age = r.varint()
	m.MaxIdle = r.varint()
}

func (r *reader) diff(d *Diff) {
	d.PreviousID = r.str()
	d.PreviousTime = r.time()
	d.NewCount = r.int()
	d.GoneCount = r.int()
	d.Unchanged = r.int()
	for _, l := range []*[]ClientRef{&d.New, &d.Gone} {
		n, ok := r.length(7)
		if !ok {
			continue
		}
		*l = make([]ClientRef, n)
		for i := range *l {
			c := &(*l)[i]
			c.ID = r.str()
			c.Addr = r.str()
			c.Name = r.str()
			c.User = r.str()
			c.Cmd = r.str()
			c.Age = r.varint()
			c.Idle = r.varint()
		}
	}
}

func (r *reader) clients() []dcsapi.ClientInfo {
	n, ok := r.length(1)
	if !ok || r.err != nil {
		return nil
	}
	if n > MaxSessions {
		r.fail("%d sessions, more than MaxSessions (%d)", n, MaxSessions)
		return nil
	}
	cs := make([]dcsapi.ClientInfo, n)
	if n == 0 {
		return cs
	}
	strs := make([]string, n)
	ints := make([]int64, n)
	scol := func(set func(*dcsapi.ClientInfo, string), first bool) {
		r.strColumn(strs, ints, first)
		if r.err == nil {
			for i := range cs {
				set(&cs[i], strs[i])
			}
		}
	}
	icol := func(set func(*dcsapi.ClientInfo, int64)) {
		r.intColumn(ints, true)
		if r.err == nil {
			for i := range cs {
				set(&cs[i], ints[i])
			}
		}
	}
	scol(func(c *dcsapi.ClientInfo, s string) { c.ID = s }, true)
	if kind := r.byte1(); kind != strSplit && r.err == nil {
		r.fail("addr column of kind %d", kind)
	}
	r.dictColumn(strs, true)
	r.intColumn(ints, true)
	if r.err == nil {
		// One allocation for the whole column: addrs are substrings of it.
		buf := make([]byte, 0, n*22)
		ends := make([]int, n)
		for i := range cs {
			if ints[i] < -1 || ints[i] > 65535 {
				r.fail("port %d out of range", ints[i])
				break
			}
			buf = append(buf, strs[i]...)
			if ints[i] >= 0 {
				buf = append(buf, ':')
				buf = strconv.AppendInt(buf, ints[i], 10)
			}
			ends[i] = len(buf)
		}
		if r.err == nil {
			all, start := string(buf), 0
			for i := range cs {
				cs[i].Addr = all[start:ends[i]]
				start = ends[i]
			}
		}
	}
	scol(func(c *dcsapi.ClientInfo, s string) { c.FD = s }, false)
	scol(func(c *dcsapi.ClientInfo, s string) { c.Name = s }, false)
	scol(func(c *dcsapi.ClientInfo, s string) { c.Cmd = s }, false)
	icol(func(c *dcsapi.ClientInfo, v int64) { c.Age = v })
	icol(func(c *dcsapi.ClientInfo, v int64) { c.Idle = v })
	scol(func(c *dcsapi.ClientInfo, s string) { c.DB = s }, false)
	scol(func(c *dcsapi.ClientInfo, s string) { c.Flags = s }, false)
	icol(func(c *dcsapi.ClientInfo, v int64) { c.Sub = v })
	icol(func(c *dcsapi.ClientInfo, v int64) { c.Psub = v })
	icol(func(c *dcsapi.ClientInfo, v int64) { c.Multi = v })
	icol(func(c *dcsapi.ClientInfo, v int64) { c.Qbuf = v })
	icol(func(c *dcsapi.ClientInfo, v int64) { c.QbufFree = v })
	icol(func(c *dcsapi.ClientInfo, v int64) { c.Obl = v })
	icol(func(c *dcsapi.ClientInfo, v int64) { c.Oll = v })
	icol(func(c *dcsapi.ClientInfo, v int64) { c.Omem = v })
	scol(func(c *dcsapi.ClientInfo, s string) { c.Events = s }, false)
	scol(func(c *dcsapi.ClientInfo, s string) { c.Network = s }, false)
	scol(func(c *dcsapi.ClientInfo, s string) { c.Peer = s }, false)
	scol(func(c *dcsapi.ClientInfo, s string) { c.User = s }, false)
	if r.err != nil {
		return nil
	}
	return cs
}

func (r *reader) strColumn(strs []string, ints []int64, first bool) {
	switch kind := r.byte1(); {
	case r.err != nil:
	case kind == strInt:
		r.intColumn(ints, !first)
		if r.err == nil {
			buf := make([]byte, 0, len(ints)*8)
			for _, v := range ints {
				buf = strconv.AppendInt(buf, v, 10)
			}
			all, start := string(buf), 0
			for i, v := range ints {
				end := start + decimalLen(v)
				strs[i] = all[start:end]
				start = end
			}
		}
	case kind == strDict:
		r.dictColumn(strs, !first)
	default:
		r.fail("string column of kind %d", kind)
	}
}

func (r *reader) dictColumn(strs []string, allowConst bool) {
	u := r.uvarint()
	if r.err != nil {
		return
	}
	// Each entry takes at least its length byte.
	if u == 0 || u > uint64(len(strs)) || u > uint64(len(r.b)-r.off) {
		r.fail("dictionary of %d entries for %d rows and %d bytes", u, len(strs), len(r.b)-r.off)
		return
	}
	n := int(u)
	dict := make([]string, n)
	for i := range dict {
		dict[i] = r.str()
	}
	if n == 1 && allowConst {
		for i := range strs {
			strs[i] = dict[0]
		}
		return
	}
	if len(strs) > len(r.b)-r.off {
		r.fail("%d indices cannot fit in %d bytes", len(strs), len(r.b)-r.off)
		return
	}
	for i := range strs {
		j := r.uvarint()
		if r.err != nil {
			return
		}
		if j >= uint64(n) {
			r.fail("index %d out of a dictionary of %d", j, n)
			return
		}
		strs[i] = dict[j]
	}
}

func (r *reader) intColumn(v []int64, allowConst bool) {
	kind := r.byte1()
	if r.err != nil {
		return
	}
	switch kind {
	case intConst:
		if !allowConst {
			r.fail("constant column where one is not allowed")
			return
		}
		x := r.varint()
		for i := range v {
			v[i] = x
		}
	case intRaw, intDelta:
		if len(v) > len(r.b)-r.off {
			r.fail("%d values cannot fit in %d bytes", len(v), len(r.b)-r.off)
			return
		}
		prev := int64(0)
		for i := range v {
			x := r.varint()
			if kind == intDelta {
				x += prev
				prev = x
			}
			v[i] = x
		}
	default:
		r.fail("int column of kind %d", kind)
	}
}
