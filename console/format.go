package console

import (
	"fmt"
	"html/template"
	"strconv"
	"time"
)

var funcs = template.FuncMap{
	"ts":    fmtTime,
	"tsms":  func(t time.Time) string { return fmtTimeMS(t) },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"secs":  fmtSeconds,
	"dur":   func(d time.Duration) string { return fmtSeconds(int64(d / time.Second)) },
	"num":   fmtInt,
	"pct":   pct,
	"width": width,
	"add":   func(a, b int) int { return a + b },
}

// fmtTime is a timestamp for tables: UTC, to the second; "" for zero.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

func fmtTimeMS(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("15:04:05.000")
}

// fmtAgo is "12s ago", "3m ago", "2h05m ago", "4d ago"; "in the future" when
// the clocks disagree.
func fmtAgo(d time.Duration) string {
	if d < -2*time.Second {
		return "in the future"
	}
	d = max(d, 0)
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds ago", s)
	case s < 3600:
		return fmt.Sprintf("%dm ago", s/60)
	case s < 48*3600:
		return fmt.Sprintf("%dh%02dm ago", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd ago", s/86400)
}

// fmtSeconds is a duration in seconds for humans, to two units: "45s",
// "12m05s", "10m", "3h12m", "1h", "4d03h", "2d".
func fmtSeconds(s int64) string {
	switch {
	case s < 0:
		return strconv.FormatInt(s, 10) + "s"
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600 && s%60 == 0:
		return fmt.Sprintf("%dm", s/60)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400 && s%3600 < 60:
		return fmt.Sprintf("%dh", s/3600)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	case s%86400 < 3600:
		return fmt.Sprintf("%dd", s/86400)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
}

// fmtInt groups thousands: 12345 → "12,345".
func fmtInt(n int) string {
	s := strconv.Itoa(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// pct is n of total in percent, one decimal: "12.5%".
func pct(n, total int) string {
	if total <= 0 {
		return "0%"
	}
	return strconv.FormatFloat(100*float64(n)/float64(total), 'f', 1, 64) + "%"
}

// width is the CSS class of a bar n of max long: w0 … w100 (the stylesheet
// has one rule per percent, since the CSP forbids inline styles). A non-zero
// n always shows at least 1%.
func width(n, max int) string {
	if max <= 0 || n <= 0 {
		return "w0"
	}
	p := min((n*100+max/2)/max, 100)
	return "w" + strconv.Itoa(max1(p))
}

func max1(p int) int {
	if p < 1 {
		return 1
	}
	return p
}
