package dcsapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FlexInt decodes a JSON number, a string holding a number, "", or null.
// DCS models have changed field types over time (ClientInfo.idle was a string
// before SDK v0.1.96), so numeric fields accept both forms.
type FlexInt int64

// UnmarshalJSON implements json.Unmarshaler. encoding/json has validated b
// already, so the common forms are parsed without decoding it again.
func (f *FlexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*f = 0
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		if raw, ok := plainString(b); ok {
			s = raw
		} else if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			*f = 0
			return nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*f = FlexInt(n)
		return nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || x > math.MaxInt64 || x < math.MinInt64 {
		return fmt.Errorf("not an integer: %.40s", string(b))
	}
	*f = FlexInt(int64(x))
	return nil
}

// plainString returns the content of a JSON string literal that needs no
// unescaping (no backslash, valid UTF-8, no control character): the common
// case, decoded without a second pass of encoding/json.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	for _, c := range in {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}

// FlexString decodes a JSON string, a number or bool (kept as its literal
// text), or null (""). db is a string in the API but some payloads send 0.
type FlexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		if raw, ok := plainString(b); ok {
			*f = FlexString(raw)
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
	case b[0] == '{' || b[0] == '[':
		return fmt.Errorf("expected a string, got %.40s", string(b))
	default:
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*f = FlexString(b)
	}
	return nil
}

// FlexTime decodes the time forms DCS uses: epoch milliseconds as a string or
// number (job begin/end), RFC 3339 with or without fraction or zone, and
// "2006-01-02 15:04:05" (UTC assumed). "" and null give the zero time. The raw
// text is kept, because the ListClients `time` format is UNCONFIRMED.
type FlexTime struct {
	Time time.Time
	Raw  string
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006/01/02 15:04:05",
}

// ParseTime parses s as one of the forms FlexTime accepts.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		switch {
		case n > 1e14: // microseconds or beyond: not used by DCS, refuse rather than guess
			return time.Time{}, fmt.Errorf("time %q: epoch value out of range", s)
		case n > 1e11: // milliseconds (after 1973)
			return time.UnixMilli(n).UTC(), nil
		default: // seconds
			return time.Unix(n, 0).UTC(), nil
		}
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: unknown format", s)
}

// UnmarshalJSON implements json.Unmarshaler. An unknown format is not an
// error: Time stays zero and Raw keeps the text.
func (f *FlexTime) UnmarshalJSON(b []byte) error {
	var s FlexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	f.Raw = string(s)
	f.Time, _ = ParseTime(f.Raw)
	return nil
}

// MarshalJSON writes the raw text, so a decoded value round-trips.
func (f FlexTime) MarshalJSON() ([]byte, error) {
	if f.Raw == "" && !f.Time.IsZero() {
		return json.Marshal(f.Time.Format(time.RFC3339Nano))
	}
	return json.Marshal(f.Raw)
}
