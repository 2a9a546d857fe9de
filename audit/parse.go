package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/dcsjobs/dcsjobs/dcsapi"
)

// nameRE is what an audit name must match: short and safe as a metric label
// and as part of a Redis key.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// maxProblems caps how many problems one error lists.
const maxProblems = 20

// Known keys, sorted (error messages list them).
var (
	topKeys   = []string{"audits"}
	auditKeys = []string{"all_nodes", "clean_cache", "instance", "name", "nodes", "retention", "rules", "schedule"}
	ruleKeys  = []string{"allowed_cidrs", "idle_sessions", "max_clients", "max_sessions_per_client_ip",
		"max_share_of_maxclients", "new_clients"}
	idleKeys = []string{"longer_than", "max"}
)

// Parse decodes and validates an audit configuration (see the package
// documentation for the format). Decoding is strict: an unknown or repeated
// key is an error, and so is every invalid value. The error lists every
// problem found (at most 20), each as "line N: ..." naming the audit and the
// field, separated by "; ".
func Parse(data []byte) (*Config, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("the file is empty: expected a mapping with an \"audits\" list")
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file has no YAML document (only comments?): expected a mapping with an \"audits\" list")
		}
		return nil, fmt.Errorf("invalid YAML: %w", trimYAMLError(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("line %d: a second YAML document (\"---\"); the file must hold one", extra.Line)
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("invalid YAML: %w", trimYAMLError(err))
	}
	p := &parser{}
	c := p.config(&doc)
	if len(p.problems) > 0 {
		msg := strings.Join(p.problems, "; ")
		if p.dropped > 0 {
			msg += fmt.Sprintf("; and %d more problems", p.dropped)
		}
		return nil, errors.New(msg)
	}
	return c, nil
}

// trimYAMLError removes the "yaml: " prefix, which the caller's words replace.
func trimYAMLError(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

type parser struct {
	problems []string
	dropped  int
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	if len(p.problems) >= maxProblems {
		p.dropped++
		return
	}
	msg := fmt.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		msg = fmt.Sprintf("line %d: %s", n.Line, msg)
	}
	p.problems = append(p.problems, msg)
}

// entry is one key of a mapping and its value.
type entry struct {
	key, val *yaml.Node
}

// mapping returns the known keys of n by name, reporting unknown and repeated
// keys. where names the mapping in messages ("in audit \"x\" rules").
func (p *parser) mapping(n *yaml.Node, where string, known []string) (map[string]entry, bool) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: expected a mapping of keys, got %s", strings.TrimPrefix(where, "in "), describe(n))
		return nil, false
	}
	out := make(map[string]entry, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		name := k.Value
		if !contains(known, name) {
			p.errorf(k, "unknown field %q %s (%s)", name, where, suggest(name, known))
			continue
		}
		if prev, dup := out[name]; dup {
			p.errorf(k, "field %q is repeated %s (first at line %d)", name, where, prev.key.Line)
			continue
		}
		out[name] = entry{k, v}
	}
	return out, true
}

func (p *parser) config(doc *yaml.Node) *Config {
	root := doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			p.errorf(nil, "the file is empty: expected a mapping with an \"audits\" list")
			return nil
		}
		root = root.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		p.errorf(root, "the file is empty: expected a mapping with an \"audits\" list")
		return nil
	}
	m, ok := p.mapping(root, "at the top level", topKeys)
	if !ok {
		return nil
	}
	e, ok := m["audits"]
	if !ok {
		p.errorf(root, "no \"audits\" list (write \"audits: []\" for none)")
		return nil
	}
	if isNull(e.val) {
		p.errorf(e.key, "audits is empty (write \"audits: []\" for none)")
		return nil
	}
	if e.val.Kind != yaml.SequenceNode {
		p.errorf(e.val, "audits: expected a list, got %s", describe(e.val))
		return nil
	}
	c := &Config{Audits: make([]Audit, 0, len(e.val.Content))}
	firstLine := map[string]int{}
	for i, n := range e.val.Content {
		a, ok := p.audit(resolve(n), i)
		if !ok {
			continue
		}
		if line, dup := firstLine[a.Name]; dup {
			p.errorf(n, "audit name %q is used twice (first at line %d)", a.Name, line)
			continue
		}
		firstLine[a.Name] = n.Line
		c.Audits = append(c.Audits, a)
	}
	return c
}

// audit decodes and validates one audit; ok is false if it has a problem
// (which is reported).
func (p *parser) audit(n *yaml.Node, idx int) (Audit, bool) {
	before := len(p.problems) + p.dropped
	label := fmt.Sprintf("audit #%d", idx+1)
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := resolve(n.Content[i+1]); n.Content[i].Value == "name" && v.Kind == yaml.ScalarNode && nameRE.MatchString(v.Value) {
				label = fmt.Sprintf("audit %q", v.Value)
			}
		}
	}
	m, ok := p.mapping(n, "in "+label, auditKeys)
	if !ok {
		return Audit{}, false
	}
	var a Audit
	fv := fieldValues{p: p, label: label}

	if e, ok := m["name"]; !ok || isNull(e.val) {
		p.errorf(n, "%s: name is missing", label)
	} else if s, ok := fv.str(e, "name"); ok {
		if !nameRE.MatchString(s) {
			p.errorf(e.val, "%s: name %q is invalid: it must match %s (lowercase letters, digits, '_' and '-', at most 32)", label, s, nameRE)
		}
		a.Name = s
	}

	if e, ok := m["instance"]; !ok || isNull(e.val) {
		p.errorf(n, "%s: instance is missing", label)
	} else if s, ok := fv.str(e, "instance"); ok {
		if err := dcsapi.ValidateID("instance", s); err != nil {
			p.errorf(e.val, "%s: %v", label, err)
		}
		a.Instance = s
	}

	nodes, hasNodes := m["nodes"]
	hasNodes = hasNodes && !isNull(nodes.val)
	if e, ok := m["all_nodes"]; ok && !isNull(e.val) {
		a.AllNodes, _ = fv.bool(e, "all_nodes")
	}
	switch {
	case hasNodes && a.AllNodes:
		p.errorf(nodes.key, "%s: nodes and all_nodes: true are both set; give exactly one", label)
	case !hasNodes && !a.AllNodes:
		p.errorf(n, "%s: neither nodes nor all_nodes: true is set; give exactly one", label)
	case hasNodes:
		a.Nodes = fv.nodes(nodes)
	}

	if e, ok := m["schedule"]; !ok || isNull(e.val) {
		p.errorf(n, "%s: schedule is missing (a 5-field cron spec, @hourly, @daily, or \"@every 15m\")", label)
	} else if s, ok := fv.str(e, "schedule"); ok {
		if _, err := parseSchedule(s); err != nil {
			p.errorf(e.val, "%s: schedule %q is invalid: %v", label, s, err)
		}
		a.Schedule = s
	}

	if e, ok := m["clean_cache"]; ok && !isNull(e.val) {
		a.CleanCache, _ = fv.bool(e, "clean_cache")
	}
	if e, ok := m["retention"]; ok && !isNull(e.val) {
		a.Retention, _ = fv.duration(e, "retention", 0)
	}
	if e, ok := m["rules"]; ok && !isNull(e.val) {
		a.Rules = fv.rules(e)
	}
	return a, len(p.problems)+p.dropped == before
}

// fieldValues decodes the values of one audit, reporting problems with the
// audit's label and the field's path.
type fieldValues struct {
	p     *parser
	label string
}

func (f fieldValues) scalar(e entry, field string) bool {
	if e.val.Kind != yaml.ScalarNode || isNull(e.val) {
		f.p.errorf(e.val, "%s: %s: expected a single value, got %s", f.label, field, describe(e.val))
		return false
	}
	return true
}

func (f fieldValues) str(e entry, field string) (string, bool) {
	if !f.scalar(e, field) {
		return "", false
	}
	return e.val.Value, true
}

func (f fieldValues) bool(e entry, field string) (bool, bool) {
	if !f.scalar(e, field) {
		return false, false
	}
	switch e.val.Value {
	case "true", "True", "TRUE":
		return true, true
	case "false", "False", "FALSE":
		return false, true
	}
	f.p.errorf(e.val, "%s: %s: %q is not a boolean (true or false)", f.label, field, e.val.Value)
	return false, false
}

func (f fieldValues) int(e entry, field string, min int64) (int64, bool) {
	if !f.scalar(e, field) {
		return 0, false
	}
	var v int64
	if e.val.Tag != "!!int" || e.val.Decode(&v) != nil {
		f.p.errorf(e.val, "%s: %s: %q is not an integer", f.label, field, e.val.Value)
		return 0, false
	}
	if v < min {
		f.p.errorf(e.val, "%s: %s: %d is below the minimum %d", f.label, field, v, min)
		return 0, false
	}
	return v, true
}

func (f fieldValues) duration(e entry, field string, min time.Duration) (time.Duration, bool) {
	if !f.scalar(e, field) {
		return 0, false
	}
	s := e.val.Value
	if s == "0" {
		if min > 0 {
			f.p.errorf(e.val, "%s: %s: 0 is below the minimum %s", f.label, field, min)
			return 0, false
		}
		return 0, true
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		f.p.errorf(e.val, "%s: %s: %q is not a duration (a number with a unit: 30m, 1h30m, 720h)", f.label, field, s)
		return 0, false
	}
	if d < 0 {
		f.p.errorf(e.val, "%s: %s: %s is negative", f.label, field, s)
		return 0, false
	}
	if d < min {
		f.p.errorf(e.val, "%s: %s: %s is below the minimum %s", f.label, field, s, min)
		return 0, false
	}
	return d, true
}

func (f fieldValues) nodes(e entry) []string {
	if e.val.Kind != yaml.SequenceNode {
		f.p.errorf(e.val, "%s: nodes: expected a list of node ids, got %s", f.label, describe(e.val))
		return nil
	}
	if len(e.val.Content) == 0 {
		f.p.errorf(e.val, "%s: nodes is an empty list; list node ids or set all_nodes: true", f.label)
		return nil
	}
	out := make([]string, 0, len(e.val.Content))
	seen := map[string]bool{}
	for i, n := range e.val.Content {
		field := fmt.Sprintf("nodes[%d]", i)
		s, ok := f.str(entry{e.key, resolve(n)}, field)
		if !ok {
			continue
		}
		if err := dcsapi.ValidateID(field, s); err != nil {
			f.p.errorf(n, "%s: %v", f.label, err)
			continue
		}
		if seen[strings.ToLower(s)] {
			f.p.errorf(n, "%s: %s: node %q is listed twice", f.label, field, s)
			continue
		}
		seen[strings.ToLower(s)] = true
		out = append(out, s)
	}
	return out
}

func (f fieldValues) rules(e entry) Rules {
	var r Rules
	m, ok := f.p.mapping(e.val, "in "+f.label+" rules", ruleKeys)
	if !ok {
		return r
	}
	has := func(k string) (entry, bool) {
		e, ok := m[k]
		return e, ok && !isNull(e.val)
	}
	if e, ok := has("idle_sessions"); ok {
		r.IdleSessions = f.idle(e)
	}
	if e, ok := has("max_sessions_per_client_ip"); ok {
		v, _ := f.int(e, "rules.max_sessions_per_client_ip", 1)
		if v > math.MaxInt32 {
			f.p.errorf(e.val, "%s: rules.max_sessions_per_client_ip: %d is too large", f.label, v)
		}
		r.MaxSessionsPerClientIP = int(v)
	}
	if e, ok := has("allowed_cidrs"); ok {
		r.AllowedCIDRs = f.cidrs(e)
	}
	if e, ok := has("max_share_of_maxclients"); ok {
		r.MaxShareOfMaxClients = f.share(e, "rules.max_share_of_maxclients")
	}
	if e, ok := has("max_clients"); ok {
		r.MaxClients, _ = f.int(e, "rules.max_clients", 1)
		if _, share := has("max_share_of_maxclients"); !share {
			f.p.errorf(e.key, "%s: rules.max_clients is set without rules.max_share_of_maxclients (it is the limit that share is taken of)", f.label)
		}
	}
	if e, ok := has("new_clients"); ok {
		r.NewClients, _ = f.bool(e, "rules.new_clients")
	}
	return r
}

func (f fieldValues) idle(e entry) *IdleRule {
	m, ok := f.p.mapping(e.val, "in "+f.label+" rules.idle_sessions", idleKeys)
	if !ok {
		return nil
	}
	r := &IdleRule{}
	if lt, ok := m["longer_than"]; !ok || isNull(lt.val) {
		f.p.errorf(e.key, "%s: rules.idle_sessions.longer_than is missing (e.g. 30m)", f.label)
	} else {
		r.LongerThan, _ = f.duration(lt, "rules.idle_sessions.longer_than", time.Second)
	}
	if mx, ok := m["max"]; ok && !isNull(mx.val) {
		v, _ := f.int(mx, "rules.idle_sessions.max", 0)
		if v > math.MaxInt32 {
			f.p.errorf(mx.val, "%s: rules.idle_sessions.max: %d is too large", f.label, v)
		}
		r.Max = int(v)
	}
	return r
}

func (f fieldValues) share(e entry, field string) float64 {
	if !f.scalar(e, field) {
		return 0
	}
	var v float64
	if (e.val.Tag != "!!float" && e.val.Tag != "!!int") || e.val.Decode(&v) != nil || math.IsNaN(v) {
		f.p.errorf(e.val, "%s: %s: %q is not a number (a share such as 0.8)", f.label, field, e.val.Value)
		return 0
	}
	if v <= 0 || v > 1 {
		f.p.errorf(e.val, "%s: %s: %s is outside (0, 1] (a share such as 0.8, not a percentage)", f.label, field, e.val.Value)
		return 0
	}
	return v
}

func (f fieldValues) cidrs(e entry) []netip.Prefix {
	const field = "rules.allowed_cidrs"
	if e.val.Kind != yaml.SequenceNode {
		f.p.errorf(e.val, "%s: %s: expected a list of CIDRs, got %s", f.label, field, describe(e.val))
		return nil
	}
	if len(e.val.Content) == 0 {
		f.p.errorf(e.val, "%s: %s is an empty list, which every client is outside; remove the rule to turn it off", f.label, field)
		return nil
	}
	out := make([]netip.Prefix, 0, len(e.val.Content))
	for i, n := range e.val.Content {
		fi := fmt.Sprintf("%s[%d]", field, i)
		s, ok := f.str(entry{e.key, resolve(n)}, fi)
		if !ok {
			continue
		}
		pfx, err := parsePrefix(s)
		if err != nil {
			f.p.errorf(n, "%s: %s: %q is not a CIDR (such as 10.0.0.0/8 or fd00::/8) or an IP", f.label, fi, s)
			continue
		}
		out = append(out, pfx)
	}
	return out
}

// parsePrefix reads a CIDR, or a single IP as a one-address prefix. The
// prefix is masked ("10.1.2.3/8" is 10.0.0.0/8) and IPv4-mapped IPv6 prefixes
// become IPv4, as client addresses are matched after unmapping.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("not an IP: %q", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := p.Addr(); a.Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, fmt.Errorf("IPv4-mapped prefix %q is shorter than ::ffff:0:0/96", s)
		}
		p = netip.PrefixFrom(a.Unmap(), bits)
	}
	return p.Masked(), nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func describe(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "nothing (null)"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	default:
		return "something else"
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// suggest names the closest known key, or lists them all.
func suggest(name string, known []string) string {
	best, bestD := "", 3 // at most 2 edits away
	for _, k := range known {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "known fields: " + strings.Join(known, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
