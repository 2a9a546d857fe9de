package results

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

// normalized is s with every time as Decode returns it: UTC, no monotonic
// reading.
func normalized(s *Snapshot) *Snapshot {
	c := *s
	n := func(t *time.Time) {
		if t.IsZero() {
			*t = time.Time{}
		} else {
			*t = t.Round(0).UTC()
		}
	}
	n(&c.Request.RequestedAt)
	n(&c.Job.BeginTime)
	n(&c.Job.EndTime)
	n(&c.DCSTime)
	n(&c.FetchedAt)
	if s.Diff != nil {
		d := *s.Diff
		n(&d.PreviousTime)
		c.Diff = &d
	}
	return &c
}

// sameSnapshot reports the first difference between two snapshots.
func sameSnapshot(t *testing.T, want, got *Snapshot) {
	t.Helper()
	want = normalized(want)
	if reflect.DeepEqual(want, got) {
		return
	}
	if len(want.Clients) != len(got.Clients) || (want.Clients == nil) != (got.Clients == nil) {
		t.Fatalf("clients: got %d (nil %v), want %d (nil %v)", len(got.Clients), got.Clients == nil, len(want.Clients), want.Clients == nil)
	}
	for i := range want.Clients {
		if want.Clients[i] != got.Clients[i] {
			t.Fatalf("client %d:\n got %+v\nwant %+v", i, got.Clients[i], want.Clients[i])
		}
	}
	w, g := *want, *got
	w.Clients, g.Clients = nil, nil
	t.Fatalf("snapshot differs:\n got %+v\nwant %+v\n diff got %+v want %+v", g, w, g.Diff, w.Diff)
}

func handMadeSnapshot() *Snapshot {
	tz := time.FixedZone("CST", 8*3600)
	return &Snapshot{
		ID:         "r-1",
		Request:    Request{ID: "r-1", InstanceID: "inst", NodeID: "node", Origin: OriginCLI, RequestedAt: time.Date(2024, 2, 29, 23, 59, 59, 999999999, tz)},
		Job:        Job{ID: "j", Status: "FAIL", BeginTime: time.Unix(-1, 5), CompletionPath: CompletedByListTime, Polls: -3},
		DCSTime:    time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		DCSTimeRaw: "1709222399999",
		FetchedAt:  time.Now(), // with a monotonic reading
		Count:      -1,
		Clients: []dcsapi.ClientInfo{
			{ID: "007", Addr: "[::1]:6379", FD: "-0", Name: "订单-服务-😀", Cmd: "NULL", Age: -5, Idle: math.MaxInt64, DB: "", Flags: "", Sub: math.MinInt64, Psub: -1, Multi: -1, Qbuf: 1 << 40, QbufFree: -32768, Events: "w", Network: "", Peer: "", User: "ü"},
			{ID: "-9223372036854775808", Addr: "::1", FD: "+1", Name: "\x00\xff", Cmd: "get"},
			{ID: "18446744073709551616", Addr: "10.0.0.1:065", FD: "1", Cmd: "get"},
			{ID: "", Addr: "10.0.0.1:", Cmd: "get"},
			{ID: "x", Addr: "10.0.0.1:-1"},
			{ID: "9223372036854775807", Addr: "10.0.0.1:65536"},
			{ID: "1", Addr: "10.0.0.1:0"},
			{ID: "2", Addr: "10.0.0.1:65535"},
			{ID: "3", Addr: ""},
			{ID: "4", Addr: ":"},
			{ID: "5", Addr: "host:12:34"},
		},
		Summary: Summary{Total: 3, ByDB: Breakdown{Keys: 1, Top: []Count{{Key: "", Sessions: 3}}, OthersKeys: -1}, ByUser: Breakdown{Top: []Count{}},
			IdleThreshold: -600, OldestConnection: Connection{Addr: "x", Age: math.MinInt64}, MaxIdle: math.MaxInt64},
		Diff: &Diff{PreviousID: "p", NewCount: 1, New: []ClientRef{{ID: "1", Addr: "a", Name: "ñ", Age: -1, Idle: 2}}, Gone: []ClientRef{}},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	one := genSnapshot(1, 1)
	one.Clients[0].Name = "αβγ-api-1"
	one.Clients[0].Multi = -1
	one.Clients[0].Sub = -7
	onlyIDs := &Snapshot{ID: "ids", Clients: []dcsapi.ClientInfo{{ID: "5"}, {ID: "5"}, {ID: "5"}}}
	sameNames := genSnapshot(300, 9)
	for i := range sameNames.Clients {
		sameNames.Clients[i].ID = "dup"
	}
	tests := []struct {
		name string
		snap *Snapshot
	}{
		{"zero", &Snapshot{}},
		{"empty clients", &Snapshot{ID: "e", Clients: []dcsapi.ClientInfo{}, Diff: &Diff{}}},
		{"0 generated", genSnapshot(0, 1)},
		{"1", one},
		{"hand-made edge cases", handMadeSnapshot()},
		{"constant ids", onlyIDs},
		{"non-numeric ids", sameNames},
		{"10000", genSnapshot(10000, 2)},
		{"50000", genSnapshot(50000, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := Encode(tt.snap)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			sameSnapshot(t, tt.snap, got)
			// Encoding is deterministic: a decoded snapshot encodes to the same bytes.
			b2, err := Encode(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, b2) {
				t.Errorf("re-encoding differs: %d vs %d bytes", len(b), len(b2))
			}
		})
	}
}

func TestEncodeNil(t *testing.T) {
	t.Parallel()
	if _, err := Encode(nil); err == nil {
		t.Fatal("Encode(nil): no error")
	}
}

type sizes struct{ enc, json, jsonGzip, jsonZstd int }

// measure encodes s and marshals it to JSON; with baselines it also
// compresses the JSON with gzip -9 and zstd (best), the alternatives to the
// hand-written codec.
func measure(tb testing.TB, s *Snapshot, baselines bool) sizes {
	tb.Helper()
	b, err := Encode(s)
	if err != nil {
		tb.Fatal(err)
	}
	j, err := json.Marshal(s)
	if err != nil {
		tb.Fatal(err)
	}
	m := sizes{enc: len(b), json: len(j)}
	if baselines {
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		_, _ = zw.Write(j)
		_ = zw.Close()
		m.jsonGzip = gz.Len()
		ze, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
		m.jsonZstd = len(ze.EncodeAll(j, nil))
	}
	return m
}

// TestCodecSize checks the size target: a 10,000-session snapshot encodes to
// under 15% of its JSON (a size check, not a timing one).
func TestCodecSize(t *testing.T) {
	t.Parallel()
	shuffled := genSnapshot(10000, 4)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(shuffled.Clients), func(i, j int) {
		shuffled.Clients[i], shuffled.Clients[j] = shuffled.Clients[j], shuffled.Clients[i]
	})
	tests := []struct {
		name     string
		snap     *Snapshot
		maxRatio float64
	}{
		{"10k in connection order", genSnapshot(10000, 4), 0.15},
		{"10k shuffled", shuffled, 0.15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := measure(t, tt.snap, false)
			ratio := float64(m.enc) / float64(m.json)
			t.Logf("encoded %d bytes, JSON %d: %.2f%%", m.enc, m.json, 100*ratio)
			if ratio >= tt.maxRatio {
				t.Errorf("encoded/JSON = %.4f, want < %.2f", ratio, tt.maxRatio)
			}
		})
	}
}

// frame wraps a raw payload as Encode would, so that tests can reach the
// payload parser with valid compression around invalid content.
func frame(raw []byte) []byte {
	out := append([]byte(Magic), CodecVersion, compressionZstd)
	out = binary.AppendUvarint(out, uint64(len(raw)))
	return zenc().EncodeAll(raw, out)
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	good, err := Encode(genSnapshot(50, 5))
	if err != nil {
		t.Fatal(err)
	}
	raw := func(s *Snapshot) []byte {
		w := &writer{}
		w.snapshotHead(s)
		w.clients(s.Clients)
		return w.b
	}
	goodRaw := raw(genSnapshot(50, 5))
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x55
		return c
	}
	// A head, then a client count of 2^40.
	head := raw(&Snapshot{})
	head = head[: len(head)-1 : len(head)-1] // drop the nil-clients marker
	hugeCount := binary.AppendUvarint(bytes.Clone(head), 1<<40)
	overMax := binary.AppendUvarint(bytes.Clone(head), MaxSessions+2)
	overMax = append(overMax, make([]byte, MaxSessions+10)...)
	// A string that claims more bytes than there are.
	longStr := binary.AppendUvarint(nil, 1<<30)
	badLen := append([]byte(Magic), CodecVersion, compressionZstd)
	badLen = binary.AppendUvarint(badLen, MaxDecodedSize+1)
	lying := append([]byte(Magic), CodecVersion, compressionZstd)
	lying = binary.AppendUvarint(lying, 10)
	lying = zenc().EncodeAll(goodRaw, lying)
	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"short", []byte("DCS")},
		{"bad magic", append([]byte("JSON"), good[4:]...)},
		{"json", []byte(`{"id":"x","clients":[]}`)},
		{"future version", append([]byte(Magic), 2, compressionZstd, 1, 0)},
		{"unknown compression", append([]byte(Magic), CodecVersion, 9, 1, 0)},
		{"no length", []byte(Magic + "\x01\x01\xff")},
		{"length over the limit", badLen},
		{"length disagrees with zstd", lying},
		{"not zstd", append([]byte(Magic), CodecVersion, compressionZstd, 3, 'a', 'b', 'c', 'd', 'e', 'f')},
		{"truncated", good[:len(good)-10]},
		{"flipped in the middle", flip(good, len(good)/2)},
		{"flipped checksum", flip(good, len(good)-1)},
		{"empty payload", frame(nil)},
		{"truncated payload", frame(goodRaw[:len(goodRaw)-3])},
		{"trailing payload bytes", frame(append(bytes.Clone(goodRaw), 0))},
		{"huge client count", frame(hugeCount)},
		{"more than MaxSessions", frame(overMax)},
		{"huge string", frame(longStr)},
		{"bad bool", frame(append(raw(&Snapshot{})[:4], 7))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Decode(tt.in)
			if err == nil {
				t.Fatalf("Decode accepted it: %+v", s)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %q does not wrap ErrCorrupt", err)
			}
			t.Log(err)
		})
	}
}

// Every single-byte corruption of a small payload is rejected or decodes to
// something that re-encodes (never a panic).
func TestDecodeEveryByteFlipped(t *testing.T) {
	t.Parallel()
	w := &writer{}
	s := genSnapshot(20, 6)
	w.snapshotHead(s)
	w.clients(s.Clients)
	for i := range w.b {
		c := bytes.Clone(w.b)
		c[i] ^= 0xff
		if got, err := Decode(frame(c)); err == nil {
			if _, err := Encode(got); err != nil {
				t.Fatalf("byte %d: decoded but does not encode: %v", i, err)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []*Snapshot{{}, genSnapshot(1, 1), genSnapshot(30, 2), handMadeSnapshot()} {
		b, err := Encode(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(Magic + "\x01\x01\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Decode(in)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		b, err := Encode(s)
		if err != nil {
			t.Fatalf("decoded snapshot does not encode: %v", err)
		}
		s2, err := Decode(b)
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatal("decode(encode(decode(x))) != decode(x)")
		}
	})
}

func benchSnapshot(b *testing.B, n int) (*Snapshot, []byte) {
	b.Helper()
	s := genSnapshot(n, 42)
	enc, err := Encode(s)
	if err != nil {
		b.Fatal(err)
	}
	return s, enc
}

func BenchmarkEncode10k(b *testing.B) {
	s, enc := benchSnapshot(b, 10000)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode10k(b *testing.B) {
	_, enc := benchSnapshot(b, 10000)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode50k(b *testing.B) {
	s, enc := benchSnapshot(b, 50000)
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := Encode(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode50k(b *testing.B) {
	_, enc := benchSnapshot(b, 50000)
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSize reports sizes rather than times: encoded bytes, JSON bytes,
// JSON compressed by gzip -9 and by zstd (best), and the ratios to JSON.
func BenchmarkSize(b *testing.B) {
	for _, n := range []int{10000, 50000} {
		b.Run(map[int]string{10000: "10k", 50000: "50k"}[n], func(b *testing.B) {
			s := genSnapshot(n, 42)
			var m sizes
			for b.Loop() {
				m = measure(b, s, true)
			}
			b.ReportMetric(float64(m.enc), "enc-bytes")
			b.ReportMetric(float64(m.json), "json-bytes")
			b.ReportMetric(float64(m.jsonGzip), "jsongz-bytes")
			b.ReportMetric(float64(m.enc)/float64(m.json), "enc/json")
			b.ReportMetric(float64(m.jsonGzip)/float64(m.json), "jsongz/json")
			b.ReportMetric(float64(m.jsonZstd), "jsonzstd-bytes")
		})
	}
}

// BenchmarkJSONGzip10k is the baseline the codec replaces.
func BenchmarkJSONGzip10k(b *testing.B) {
	s := genSnapshot(10000, 42)
	b.ReportAllocs()
	for b.Loop() {
		j, _ := json.Marshal(s)
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write(j)
		_ = zw.Close()
	}
}

// FuzzDecodePayload reaches the payload parser past the zstd checksum that
// stops most FuzzDecode mutations: the fuzzed bytes are the payload.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []*Snapshot{{}, genSnapshot(1, 1), genSnapshot(30, 2), handMadeSnapshot()} {
		w := &writer{}
		w.snapshotHead(s)
		w.clients(s.Clients)
		f.Add(w.b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := Decode(frame(raw))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		b, err := Encode(s)
		if err != nil {
			t.Fatalf("decoded snapshot does not encode: %v", err)
		}
		s2, err := Decode(b)
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatal("decode(encode(decode(x))) != decode(x)")
		}
	})
}
