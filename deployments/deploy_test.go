// Package deployments holds the monitoring artifacts of dcsjobs (Prometheus configuration,
// recording and alerting rules with their unit tests, a Grafana dashboard and its
// provisioning) and the tests that keep them honest:
//
//   - every YAML file parses, strictly (unknown fields fail) where we own the schema;
//   - every PromQL expression in the rules, the rule tests and the dashboard only uses metric
//     names a running worker exports (KnownMetrics scrapes one) or that recording.yml defines;
//   - every alert has a severity, a summary, a description and a `for`, and tests.yml has a
//     case where it fires and one where it does not;
//   - `promtool check config`, `promtool check rules` and `promtool test rules` pass when
//     promtool is on PATH (Debian package `prometheus`; CI installs it).
package deployments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/dcsjobs/dcsjobs/dcssim"
	"github.com/dcsjobs/dcsjobs/internal/testenv"
	"github.com/dcsjobs/dcsjobs/tasks"
)

const (
	prometheusConfig = "prometheus/prometheus.yml"
	recordingRules   = "prometheus/rules/recording.yml"
	alertingRules    = "prometheus/rules/alerts.yml"
	ruleTests        = "prometheus/rules/tests.yml"
	dashboardFile    = "grafana/dashboard.json"
	datasourcesFile  = "grafana/provisioning/datasources/prometheus.yml"
	dashProviderFile = "grafana/provisioning/dashboards/dcsjobs.yml"

	dashboardUID = "dcsjobs-sessions"
)

// KnownMetrics returns the metric names a real worker exports: it starts a
// worker in-process (own redis-server, the DCS simulator), runs a successful
// and a failing request so that every family has series, scrapes /metrics
// and returns the family names (histograms by their base name), plus `up`,
// which Prometheus adds. The scrape is done once per test binary.
func KnownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	knownOnce.Do(func() { known, knownErr = scrapeWorker(t) })
	if knownErr != nil {
		t.Fatalf("known metrics: %v", knownErr)
	}
	return known
}

var (
	knownOnce sync.Once
	known     map[string]bool
	knownErr  error
)

func scrapeWorker(t *testing.T) (map[string]bool, error) {
	e := testenv.New(t, dcssim.Config{})
	e.Cfg.TopClientIPs = 3
	// An audit whose rule the simulated sessions violate, so that the audit
	// and findings families have series.
	e.Cfg.AuditConfig = filepath.Join(t.TempDir(), "audits.yml")
	audits := fmt.Sprintf("audits:\n  - name: scrape\n    instance: %s\n    nodes: [%s]\n    schedule: \"@hourly\"\n"+
		"    rules:\n      allowed_cidrs: [10.0.0.0/8]\n", dcssim.SingleInstanceID, dcssim.SingleNodeID)
	if err := os.WriteFile(e.Cfg.AuditConfig, []byte(audits), 0o600); err != nil {
		return nil, err
	}
	w, _ := e.StartWorker()
	single := testenv.Single()
	single.Audit = "scrape"
	for _, o := range []tasks.SubmitOptions{single,
		{InstanceID: dcssim.Redis3InstanceID, NodeID: dcssim.Redis3NodeID}} {
		e.Wait(e.Submit(o).ID, time.Minute)
	}
	resp, err := http.Get("http://" + w.HTTPAddr() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	out := map[string]bool{"up": true}
	for name := range fams {
		out[name] = true
	}
	return out, nil
}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	// A Prometheus duration as rule files accept it: 30s, 5m, 1h30m, 1d.
	durationRE = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
)

// ---------------------------------------------------------------- file schemas

// ruleFile is the schema of a Prometheus 2.42 rule file (rulefmt.RuleGroups).
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval"`
	Limit    int    `yaml:"limit"`
	Rules    []rule `yaml:"rules"`
}

type rule struct {
	Record        string            `yaml:"record"`
	Alert         string            `yaml:"alert"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for"`
	KeepFiringFor string            `yaml:"keep_firing_for"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations"`
}

// ruleTestFile is the schema of a `promtool test rules` file.
type ruleTestFile struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval string         `yaml:"evaluation_interval"`
	GroupEvalOrder     []string       `yaml:"group_eval_order"`
	Tests              []ruleTestCase `yaml:"tests"`
}

type ruleTestCase struct {
	Name           string            `yaml:"name"`
	Interval       string            `yaml:"interval"`
	ExternalLabels map[string]string `yaml:"external_labels"`
	ExternalURL    string            `yaml:"external_url"`
	InputSeries    []struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	} `yaml:"input_series"`
	AlertRuleTests []struct {
		EvalTime  string `yaml:"eval_time"`
		Alertname string `yaml:"alertname"`
		ExpAlerts []struct {
			ExpLabels      map[string]string `yaml:"exp_labels"`
			ExpAnnotations map[string]string `yaml:"exp_annotations"`
		} `yaml:"exp_alerts"`
	} `yaml:"alert_rule_test"`
	PromQLExprTests []struct {
		Expr       string `yaml:"expr"`
		EvalTime   string `yaml:"eval_time"`
		ExpSamples []struct {
			Labels string  `yaml:"labels"`
			Value  float64 `yaml:"value"`
		} `yaml:"exp_samples"`
	} `yaml:"promql_expr_test"`
}

// promConfig is the part of prometheus.yml we write. Decoded strictly: a field added to the
// file must be added here too (promtool is the full validator).
type promConfig struct {
	Global struct {
		ScrapeInterval     string            `yaml:"scrape_interval"`
		ScrapeTimeout      string            `yaml:"scrape_timeout"`
		EvaluationInterval string            `yaml:"evaluation_interval"`
		ExternalLabels     map[string]string `yaml:"external_labels"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	Alerting      any      `yaml:"alerting"`
	ScrapeConfigs []struct {
		JobName        string `yaml:"job_name"`
		MetricsPath    string `yaml:"metrics_path"`
		Scheme         string `yaml:"scheme"`
		ScrapeInterval string `yaml:"scrape_interval"`
		ScrapeTimeout  string `yaml:"scrape_timeout"`
		StaticConfigs  []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
		KubernetesSDConfigs []map[string]any `yaml:"kubernetes_sd_configs"`
		RelabelConfigs      []map[string]any `yaml:"relabel_configs"`
	} `yaml:"scrape_configs"`
}

type grafanaDatasources struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name      string         `yaml:"name"`
		UID       string         `yaml:"uid"`
		Type      string         `yaml:"type"`
		Access    string         `yaml:"access"`
		URL       string         `yaml:"url"`
		IsDefault bool           `yaml:"isDefault"`
		Editable  bool           `yaml:"editable"`
		JSONData  map[string]any `yaml:"jsonData"`
	} `yaml:"datasources"`
}

type grafanaDashboardProviders struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name                  string         `yaml:"name"`
		OrgID                 int            `yaml:"orgId"`
		Folder                string         `yaml:"folder"`
		Type                  string         `yaml:"type"`
		DisableDeletion       bool           `yaml:"disableDeletion"`
		AllowUIUpdates        bool           `yaml:"allowUiUpdates"`
		UpdateIntervalSeconds int            `yaml:"updateIntervalSeconds"`
		Options               map[string]any `yaml:"options"`
	} `yaml:"providers"`
}

// strictYAML is the schema each YAML file of ours is decoded into with KnownFields(true).
var strictYAML = map[string]func() any{
	prometheusConfig: func() any { return new(promConfig) },
	recordingRules:   func() any { return new(ruleFile) },
	alertingRules:    func() any { return new(ruleFile) },
	ruleTests:        func() any { return new(ruleTestFile) },
	datasourcesFile:  func() any { return new(grafanaDatasources) },
	dashProviderFile: func() any { return new(grafanaDashboardProviders) },
}

func decodeYAMLStrict(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// One document per file.
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return fmt.Errorf("%s: more than one YAML document", path)
	}
	return nil
}

func loadRules(t *testing.T, path string) ruleFile {
	t.Helper()
	var rf ruleFile
	if err := decodeYAMLStrict(path, &rf); err != nil {
		t.Fatal(err)
	}
	if len(rf.Groups) == 0 {
		t.Fatalf("%s: no rule group", path)
	}
	return rf
}

func loadDashboard(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dec.More() {
		t.Fatalf("%s: data after the dashboard object", dashboardFile)
	}
	return d
}

// ---------------------------------------------------------------- parsing every file

func TestFilesParse(t *testing.T) {
	t.Parallel()
	var seen []string
	for _, root := range []string{"prometheus", "grafana"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			path = filepath.ToSlash(path)
			switch filepath.Ext(path) {
			case ".yml", ".yaml":
				seen = append(seen, path)
				newV, ok := strictYAML[path]
				if !ok {
					// Not a schema we own: it must still be one valid YAML document.
					var v any
					b, err := os.ReadFile(path)
					if err != nil {
						return err
					}
					if err := yaml.Unmarshal(b, &v); err != nil {
						t.Errorf("%s: %v", path, err)
					}
					return nil
				}
				if err := decodeYAMLStrict(path, newV()); err != nil {
					t.Error(err)
				}
			case ".json":
				seen = append(seen, path)
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				if !json.Valid(b) {
					t.Errorf("%s: not valid JSON", path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for path := range strictYAML {
		if !slices.Contains(seen, path) {
			t.Errorf("%s is missing", path)
		}
	}
	if !slices.Contains(seen, dashboardFile) {
		t.Errorf("%s is missing", dashboardFile)
	}
}

func TestPrometheusConfig(t *testing.T) {
	t.Parallel()
	var cfg promConfig
	if err := decodeYAMLStrict(prometheusConfig, &cfg); err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, f := range cfg.RuleFiles {
		rules = append(rules, filepath.ToSlash(filepath.Join(filepath.Dir(prometheusConfig), f)))
	}
	for _, want := range []string{recordingRules, alertingRules} {
		if !slices.Contains(rules, want) {
			t.Errorf("%s: rule_files %v do not load %s", prometheusConfig, cfg.RuleFiles, want)
		}
	}
	if slices.Contains(rules, ruleTests) {
		t.Errorf("%s: rule_files load %s, which is a test file, not rules", prometheusConfig, ruleTests)
	}
	// The alerts select the workers by job="dcsjobs".
	var job bool
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "dcsjobs" {
			job = true
			if len(sc.StaticConfigs) == 0 || len(sc.StaticConfigs[0].Targets) == 0 {
				t.Errorf("%s: job dcsjobs has no example target", prometheusConfig)
			}
		}
	}
	if !job {
		t.Errorf(`%s: no scrape job "dcsjobs", which the alerts select with up{job="dcsjobs"}`, prometheusConfig)
	}
}

// ---------------------------------------------------------------- rules

var severities = map[string]bool{"critical": true, "warning": true, "info": true}

func TestRuleConventions(t *testing.T) {
	t.Parallel()
	rec := loadRules(t, recordingRules)
	for _, g := range rec.Groups {
		for i, r := range g.Rules {
			where := fmt.Sprintf("%s: group %q rule %d", recordingRules, g.Name, i+1)
			if r.Alert != "" || r.Record == "" {
				t.Errorf("%s: recording.yml holds recording rules only", where)
				continue
			}
			// level:metric:operations
			if parts := strings.Split(r.Record, ":"); len(parts) != 3 || parts[1] == "" || parts[2] == "" {
				t.Errorf("%s: %q is not named level:metric:operations", where, r.Record)
			}
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: %s has no expr", where, r.Record)
			}
		}
	}

	al := loadRules(t, alertingRules)
	names := map[string]bool{}
	for _, g := range al.Groups {
		for _, r := range g.Rules {
			where := fmt.Sprintf("%s: group %q alert %q", alertingRules, g.Name, r.Alert)
			if r.Alert == "" || r.Record != "" {
				t.Errorf("%s: alerts.yml holds alerting rules only (record %q)", where, r.Record)
				continue
			}
			if names[r.Alert] {
				t.Errorf("%s: alert name used twice", where)
			}
			names[r.Alert] = true
			if !severities[r.Labels["severity"]] {
				t.Errorf("%s: severity %q, want one of critical, warning, info", where, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", where, a)
				}
			}
			if !durationRE.MatchString(r.For) {
				t.Errorf("%s: for %q, want a duration such as 5m", where, r.For)
			}
		}
	}
}

func alertNames(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, g := range loadRules(t, alertingRules).Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				names = append(names, r.Alert)
			}
		}
	}
	return names
}

// TestEveryAlertTested checks that tests.yml has, for every alert, a case where it fires and
// one where it does not (exp_alerts empty), and no case for an alert that does not exist.
func TestEveryAlertTested(t *testing.T) {
	t.Parallel()
	var tf ruleTestFile
	if err := decodeYAMLStrict(ruleTests, &tf); err != nil {
		t.Fatal(err)
	}
	// The tests load both rule files, and (if they set group_eval_order) evaluate every
	// recording group before any alerting group, so that alert values are deterministic.
	var files []string
	for _, f := range tf.RuleFiles {
		files = append(files, filepath.ToSlash(filepath.Join(filepath.Dir(ruleTests), f)))
	}
	if !slices.Contains(files, recordingRules) || !slices.Contains(files, alertingRules) {
		t.Errorf("%s: rule_files %v, want both %s and %s", ruleTests, tf.RuleFiles, recordingRules, alertingRules)
	}
	if len(tf.GroupEvalOrder) > 0 {
		var want []string
		for _, path := range []string{recordingRules, alertingRules} {
			for _, g := range loadRules(t, path).Groups {
				want = append(want, g.Name)
			}
		}
		if !slices.Equal(tf.GroupEvalOrder, want) {
			t.Errorf("%s: group_eval_order %v, want %v (recording groups first, every group)", ruleTests, tf.GroupEvalOrder, want)
		}
	}

	firing, quiet := map[string]int{}, map[string]int{}
	for _, tc := range tf.Tests {
		for _, at := range tc.AlertRuleTests {
			if len(at.ExpAlerts) > 0 {
				firing[at.Alertname]++
			} else {
				quiet[at.Alertname]++
			}
		}
	}
	alerts := alertNames(t)
	for _, a := range alerts {
		if firing[a] == 0 {
			t.Errorf("%s: no test case where %s fires", ruleTests, a)
		}
		if quiet[a] == 0 {
			t.Errorf("%s: no test case where %s does not fire", ruleTests, a)
		}
	}
	for a := range mergeKeys(firing, quiet) {
		if !slices.Contains(alerts, a) {
			t.Errorf("%s: tests alert %q, which %s does not define", ruleTests, a, alertingRules)
		}
	}
}

// ---------------------------------------------------------------- dashboard

func TestDashboard(t *testing.T) {
	t.Parallel()
	d := loadDashboard(t)
	if d["uid"] != dashboardUID {
		t.Errorf("uid = %v, want %q (links and provisioning rely on it)", d["uid"], dashboardUID)
	}
	if v, _ := d["schemaVersion"].(json.Number).Int64(); v < 36 || v > 41 {
		t.Errorf("schemaVersion = %v, want about 39", d["schemaVersion"])
	}

	vars := map[string]map[string]any{}
	for _, v := range list(mapOf(d["templating"])["list"]) {
		v := mapOf(v)
		vars[str(v["name"])] = v
	}
	if ds := vars["datasource"]; ds == nil || ds["type"] != "datasource" || ds["query"] != "prometheus" {
		t.Errorf("no datasource variable of type prometheus: %v", ds)
	}
	for _, name := range []string{"instance_id", "node_id"} {
		v := vars[name]
		if v == nil {
			t.Errorf("no %s variable", name)
			continue
		}
		q := variableQuery(v)
		if !strings.HasPrefix(q, "label_values(dcsjobs_node_sessions") || !strings.HasSuffix(q, ", "+name+")") {
			t.Errorf("variable %s: query %q, want label_values(dcsjobs_node_sessions..., %s)", name, q, name)
		}
	}

	ids := map[string]bool{}
	titles := map[string]bool{}
	for _, p := range panelsOf(d) {
		id := fmt.Sprint(p["id"])
		title := str(p["title"])
		if ids[id] {
			t.Errorf("panel id %s used twice", id)
		}
		ids[id] = true
		titles[title] = true
		g := mapOf(p["gridPos"])
		x, _ := g["x"].(json.Number).Int64()
		w, _ := g["w"].(json.Number).Int64()
		if w <= 0 || x < 0 || x+w > 24 {
			t.Errorf("panel %q: gridPos %v does not fit 24 columns", title, g)
		}
		if p["type"] == "row" {
			continue
		}
		if str(p["description"]) == "" {
			t.Errorf("panel %q has no description", title)
		}
		if uid := str(mapOf(p["datasource"])["uid"]); uid != "${datasource}" {
			t.Errorf("panel %q: datasource uid %q, want ${datasource}", title, uid)
		}
		targets := list(p["targets"])
		if len(targets) == 0 {
			t.Errorf("panel %q has no query", title)
		}
		for _, tg := range targets {
			tg := mapOf(tg)
			if str(tg["expr"]) == "" {
				t.Errorf("panel %q: target %v has no expr", title, tg["refId"])
			}
			if uid := str(mapOf(tg["datasource"])["uid"]); uid != "${datasource}" {
				t.Errorf("panel %q: target %v: datasource uid %q, want ${datasource}", title, tg["refId"], uid)
			}
		}
	}
	for _, want := range []string{
		"Sessions per node", "Idle sessions", "Top client IPs", "Time since last audit",
		"Request duration", "DCS job wait", "DCS errors by operation", "Throttling",
		"Queue depth", "Queue latency", "Archived tasks",
	} {
		if !titles[want] {
			t.Errorf("no panel %q", want)
		}
	}
	for _, p := range panelsOf(d) {
		if p["title"] == "Top client IPs" && !strings.Contains(str(p["description"]), "opt-in") {
			t.Errorf("panel Top client IPs: the description must say the per-IP series are opt-in")
		}
	}
}

// panelsOf returns the dashboard's panels, those nested in collapsed rows included.
func panelsOf(d map[string]any) []map[string]any {
	var out []map[string]any
	for _, p := range list(d["panels"]) {
		p := mapOf(p)
		out = append(out, p)
		for _, c := range list(p["panels"]) {
			out = append(out, mapOf(c))
		}
	}
	return out
}

// variableQuery returns a query variable's PromQL-ish query, in either of Grafana's forms.
func variableQuery(v map[string]any) string {
	switch q := v["query"].(type) {
	case string:
		return q
	case map[string]any:
		return str(q["query"])
	}
	return ""
}

// ---------------------------------------------------------------- metric names

// expression is one PromQL expression and where it was found.
type expression struct {
	where string
	expr  string
}

// expressions collects every PromQL expression of the rules, the rule tests and the
// dashboard, and the names the recording rules define.
func expressions(t *testing.T) (exprs []expression, recorded map[string]bool) {
	t.Helper()
	recorded = map[string]bool{}
	for _, path := range []string{recordingRules, alertingRules} {
		for _, g := range loadRules(t, path).Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					recorded[r.Record] = true
				}
				exprs = append(exprs, expression{fmt.Sprintf("%s: %s%s", path, r.Record, r.Alert), r.Expr})
			}
		}
	}

	var tf ruleTestFile
	if err := decodeYAMLStrict(ruleTests, &tf); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tf.Tests {
		for _, pt := range tc.PromQLExprTests {
			exprs = append(exprs, expression{fmt.Sprintf("%s: test %q", ruleTests, tc.Name), pt.Expr})
		}
	}

	d := loadDashboard(t)
	for _, p := range panelsOf(d) {
		for _, tg := range list(p["targets"]) {
			tg := mapOf(tg)
			exprs = append(exprs, expression{fmt.Sprintf("%s: panel %q target %v", dashboardFile, p["title"], tg["refId"]), str(tg["expr"])})
		}
	}
	for _, v := range list(mapOf(d["templating"])["list"]) {
		v := mapOf(v)
		if v["type"] != "query" {
			continue
		}
		e, err := templateQueryExpr(variableQuery(v))
		if err != nil {
			t.Errorf("%s: variable %v: %v", dashboardFile, v["name"], err)
			continue
		}
		exprs = append(exprs, expression{fmt.Sprintf("%s: variable %v", dashboardFile, v["name"]), e})
	}
	return exprs, recorded
}

// TestMetricNamesExported fails on any metric name that the worker does not export and no
// recording rule defines: a typo, or a metric renamed on one side only.
func TestMetricNamesExported(t *testing.T) {
	t.Parallel()
	known := KnownMetrics(t)
	exprs, recorded := expressions(t)
	if len(exprs) < 50 {
		t.Fatalf("found only %d expressions: is the extraction broken?", len(exprs))
	}
	used := map[string]bool{}
	for _, e := range exprs {
		names, err := metricNames(e.expr)
		if err != nil {
			t.Errorf("%s: %v in %q", e.where, err, e.expr)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s: no metric name in %q", e.where, e.expr)
		}
		for _, n := range names {
			if !isKnown(n, known, recorded) {
				t.Errorf("%s: metric %q is not exported by the worker (a scrape of a running one) nor recorded in %s", e.where, n, recordingRules)
			}
			used[n] = true
		}
	}
	// Every recording rule should be used by an alert, a test or the dashboard, or be meant
	// for ad-hoc queries; report the unused ones without failing.
	var unused []string
	for r := range recorded {
		if !used[r] {
			unused = append(unused, r)
		}
	}
	sort.Strings(unused)
	t.Logf("%d expressions, %d metric names; recording rules for ad-hoc use: %v", len(exprs), len(used), unused)
}

func isKnown(name string, known, recorded map[string]bool) bool {
	if known[name] || recorded[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && known[base] {
			return true
		}
	}
	return false
}

// promqlKeywords are identifiers that are never metric names when not followed by "(":
// binary operators, modifiers, and the float literals.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "atan2": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"offset": true, "bool": true, "inf": true, "nan": true,
}

// labelListModifiers are followed by a parenthesised list of label names.
var labelListModifiers = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// metricNames returns the metric names an expression selects, sorted and without duplicates.
// It is a tokenizer, not a parser: identifiers are metric names unless they call a function
// or aggregation (followed by "("), are keywords, or are label names (inside {...}, or in the
// list after by/without/on/ignoring/group_left/group_right). String literals, [ranges],
// numbers, durations, # comments and Grafana variables ($x, ${x}, [[x]]) are skipped.
func metricNames(expr string) ([]string, error) {
	set := map[string]bool{}
	s := expr
	i := 0
	skipSpace := func(j int) int {
		for j < len(s) && strings.ContainsRune(" \t\r\n", rune(s[j])) {
			j++
		}
		return j
	}
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(s, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					return nil, errors.New("unterminated ${ variable")
				}
				i += end + 1
			} else {
				for i < len(s) && isIdentChar(s[i]) {
					i++
				}
			}
		case c == '{':
			end, err := skipUntil(s, i+1, '}')
			if err != nil {
				return nil, fmt.Errorf("label matchers: %w", err)
			}
			i = end
		case c == '[':
			end, err := skipUntil(s, i+1, ']')
			if err != nil {
				return nil, fmt.Errorf("range: %w", err)
			}
			i = end
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
			// Numbers (1, 0.8, 1e3, 0x1f) and durations (5m, 1h30m).
			for i < len(s) && (isIdentChar(s[i]) || s[i] == '.' ||
				((s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E'))) {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(s) && isIdentChar(s[i]) {
				i++
			}
			word := s[start:i]
			lower := strings.ToLower(word)
			next := skipSpace(i)
			paren := next < len(s) && s[next] == '('
			// An aggregation with its grouping first: `max by (a) (x)`.
			nextWord := next
			for nextWord < len(s) && isIdentChar(s[nextWord]) {
				nextWord++
			}
			grouping := strings.EqualFold(s[next:nextWord], "by") || strings.EqualFold(s[next:nextWord], "without")
			switch {
			case labelListModifiers[lower] && paren:
				end, err := skipUntil(s, next+1, ')')
				if err != nil {
					return nil, fmt.Errorf("%s list: %w", word, err)
				}
				i = end
			case paren, grouping, promqlKeywords[lower]:
				// A function, an aggregation, an operator or a modifier.
			default:
				set[word] = true
			}
		default:
			i++
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// skipString returns the index after the string literal that starts at s[i].
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string starting %q", s[i:])
}

// skipUntil returns the index after the first `closer` at or after s[i] outside a string.
func skipUntil(s string, i int, closer byte) (int, error) {
	for i < len(s) {
		switch c := s[i]; {
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(s, i)
			if err != nil {
				return 0, err
			}
			i = end
		case c == closer:
			return i + 1, nil
		default:
			i++
		}
	}
	return 0, fmt.Errorf("no closing %q", closer)
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }
func isDigit(c byte) bool     { return c >= '0' && c <= '9' }

// templateQueryExpr turns a Grafana Prometheus variable query into the PromQL it selects:
// label_values(expr, label) → expr; label_values(label) → ""; query_result(expr) → expr;
// metrics(regex) and label_names() → "" (they select no given metric).
func templateQueryExpr(q string) (string, error) {
	q = strings.TrimSpace(q)
	fn, args, ok := strings.Cut(q, "(")
	if !ok || !strings.HasSuffix(args, ")") {
		return "", fmt.Errorf("variable query %q is not of the form fn(args)", q)
	}
	args = strings.TrimSuffix(args, ")")
	switch strings.TrimSpace(fn) {
	case "label_values":
		comma := strings.LastIndexByte(args, ',')
		if comma < 0 {
			return "", nil
		}
		return strings.TrimSpace(args[:comma]), nil
	case "query_result":
		return strings.TrimSpace(args), nil
	case "metrics", "label_names":
		return "", nil
	}
	return "", fmt.Errorf("variable query %q: unknown function %q", q, fn)
}

func TestMetricNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum by (origin, le) (rate(dcsjobs_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval]))`,
			[]string{"dcsjobs_request_duration_seconds_bucket"}},
		{`a / on (instance_id) group_left () (b > 0)`, []string{"a", "b"}},
		{`a * on(x) group_left(node_id) b`, []string{"a", "b"}},
		{`a * ignoring (x) group_right c`, []string{"a", "c"}},
		{`sum without (instance) (x) or absent(y{job="dcsjobs"})`, []string{"x", "y"}},
		{`sum(x) BY (a) AND ON() z`, []string{"x", "z"}},
		{"max by (a) (x) + min\n\tWITHOUT(b)(y) - count   by(c)(z)", []string{"x", "y", "z"}},
		{`x{a="}", b=~"{[(", c!='\''}` + "\n" + `# comment naming not_a_metric` + "\n" + `> bool 1e3`, []string{"x"}},
		{`rate(x[5m:30s] offset 1h) @ start() / 0x1f + Inf - NaN`, []string{"x"}},
		{`delta(rec:a_b:max{state="archived"}[1h]) > 0.5`, []string{"rec:a_b:max"}},
		{`time() - max by (instance_id, node_id) (ts{instance_id=~"${instance_id:regex}"}) > $threshold`, []string{"ts"}},
		{`label_replace(m, "dst", "$1", "src", "(.*)") + count_values("v", n)`, []string{"m", "n"}},
		{`topk(20, max by (client_ip) (ips[[old]]))`, []string{"ips"}},
		{`histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m]))) * vector(1)`, []string{"h_bucket"}},
	} {
		got, err := metricNames(tc.expr)
		if err != nil {
			t.Errorf("metricNames(%q): %v", tc.expr, err)
			continue
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{`x{a="b"`, `rate(x[5m)`, `x{a="b}`, `sum by (a x`} {
		if _, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%q): no error", bad)
		}
	}
}

// TestMetricNamesNegativeControl proves the check can fail: a misspelt metric fed through the
// same extraction and lookup must be reported, and its correct spelling accepted.
func TestMetricNamesNegativeControl(t *testing.T) {
	t.Parallel()
	known := KnownMetrics(t)
	recorded := map[string]bool{"instance_id_node_id:dcsjobs_node_sessions:max": true}
	for _, tc := range []struct {
		expr    string
		unknown []string
	}{
		{`sum(rate(dcsjobs_requests_completd_total[5m])) / sum(rate(dcsjobs_requests_failed_total[5m]))`,
			[]string{"dcsjobs_requests_completd_total"}},
		{`histogram_quantile(0.9, sum by (le) (rate(dcsjobs_job_wait_second_bucket[5m])))`,
			[]string{"dcsjobs_job_wait_second_bucket"}},
		// A suffix on a name nobody exports. (KnownMetrics has no types, so a _count on a
		// gauge's name, dcsjobs_store_up_count, would pass: promtool's unit tests catch those.)
		{`dcsjobs_store_down_count`, []string{"dcsjobs_store_down_count"}},
		{`instance_id_node_id:dcsjobs_node_session:max > 0 and dcsjobs_node_sessions`,
			[]string{"instance_id_node_id:dcsjobs_node_session:max"}},
		// The correct spellings pass.
		{`sum(rate(dcsjobs_requests_completed_total[5m])) + dcsjobs_job_wait_seconds_count + instance_id_node_id:dcsjobs_node_sessions:max`, nil},
	} {
		names, err := metricNames(tc.expr)
		if err != nil {
			t.Fatalf("metricNames(%q): %v", tc.expr, err)
		}
		var unknown []string
		for _, n := range names {
			if !isKnown(n, known, recorded) {
				unknown = append(unknown, n)
			}
		}
		if strings.Join(unknown, ",") != strings.Join(tc.unknown, ",") {
			t.Errorf("unknown names in %q = %q, want %q", tc.expr, unknown, tc.unknown)
		}
	}
}

func TestTemplateQueryExpr(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]string{
		`label_values(dcsjobs_node_sessions, instance_id)`:                          `dcsjobs_node_sessions`,
		`label_values(dcsjobs_node_sessions{instance_id=~"$instance_id"}, node_id)`: `dcsjobs_node_sessions{instance_id=~"$instance_id"}`,
		`label_values(queue)`: ``,
		`query_result(topk(5, sum by (instance_id) (dcsjobs_node_sessions)))`: `topk(5, sum by (instance_id) (dcsjobs_node_sessions))`,
		` metrics(dcsjobs_.*) `: ``,
		`label_values(max by (a, b) (dcsjobs_node_sessions{x=~"1,2"}), b)`:                `max by (a, b) (dcsjobs_node_sessions{x=~"1,2"})`,
		`query_result(count_values("v", dcsjobs_build_info))`:                             `count_values("v", dcsjobs_build_info)`,
		`label_values(dcsjobs_node_sessions{instance_id=~"${instance_id:regex}"}, db)`:    `dcsjobs_node_sessions{instance_id=~"${instance_id:regex}"}`,
		`label_values(dcsjobs_node_sessions_by_client_ip{client_ip=~"10\\..*"}, node_id)`: `dcsjobs_node_sessions_by_client_ip{client_ip=~"10\\..*"}`,
	} {
		got, err := templateQueryExpr(q)
		if err != nil || got != want {
			t.Errorf("templateQueryExpr(%q) = %q, %v; want %q", q, got, err, want)
		}
	}
	if _, err := templateQueryExpr("dcsjobs_node_sessions"); err == nil {
		t.Error("templateQueryExpr accepted a query that is not fn(args)")
	}
}

// ---------------------------------------------------------------- promtool

// TestPromtool runs promtool (Prometheus 2.42 in Debian's `prometheus` package, which CI
// installs) on the configuration, the rules and the rule unit tests.
func TestPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (apt-get install prometheus): configuration, rules and rule tests not checked")
	}
	for _, args := range [][]string{
		{"check", "config", prometheusConfig},
		{"check", "rules", "--lint=duplicate-rules", "--lint-fatal", recordingRules, alertingRules},
		{"test", "rules", ruleTests},
	} {
		t.Run(strings.Join(args[:2], "_"), func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(promtool, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
		})
	}
}

// ---------------------------------------------------------------- helpers

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func mergeKeys(ms ...map[string]int) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			out[k] = true
		}
	}
	return out
}
