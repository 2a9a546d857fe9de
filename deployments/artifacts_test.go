package deployments

// Tests of the deployment artifacts: the Dockerfile, docker-compose.yml, the Kubernetes
// manifests and the systemd units. They run offline, with whatever tools the machine has:
//
//   - every Kubernetes object decodes strictly into its API type (k8s.io/api); the
//     Kustomization and the ServiceMonitor, whose types are not vendored, into local
//     structs holding only the fields we use (unknown fields fail). `kubectl kustomize`
//     renders the directory when kubectl is on PATH;
//   - the cross-references hold: env var names are worker settings (the usage text of
//     config.Load, which is what `worker -h` prints) and the values load; probes, ports,
//     selectors, Secret keys, ConfigMaps and mounts agree; the audit files parse with
//     audit.Parse; the ServiceMonitor yields job="dcsjobs", which the alerts select;
//   - systemd-analyze verify (strict) and systemd-analyze security on copies of the units
//     whose ExecStart points at an existing executable, when systemd-analyze exists;
//   - the Dockerfile is linted, and the Go packages it builds are listed (`go list -deps`)
//     in a copy of the build context filtered by its .dockerignore. No image is built;
//   - docker-compose.yml decodes strictly and agrees with the simulator and the worker;
//     `docker compose config -q` runs when `docker compose version` works, and promtool
//     checks the compose Prometheus configuration when promtool is on PATH.

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/dcsjobs/dcsjobs/audit"
	"github.com/dcsjobs/dcsjobs/config"
	"github.com/dcsjobs/dcsjobs/dcssim"
	"github.com/dcsjobs/dcsjobs/metrics"
)

const (
	dockerfile       = "docker/Dockerfile"
	dockerignore     = "docker/Dockerfile.dockerignore"
	composeFile      = "docker-compose.yml"
	composeAudits    = "compose/audits.yml"
	composePromCfg   = "compose/prometheus.yml"
	kubeDir          = "kubernetes"
	systemdDir       = "systemd"
	systemdEnvFile   = "systemd/worker.env.example"
	workerPort       = 9180
	workerImageUser  = "65532"
	metricsJob       = "dcsjobs" // the job the alerts select: up{job="dcsjobs"}
	workerShutdown   = 10 * time.Second
	workerBinaryPath = "/usr/local/bin/worker"
)

// The version string is set with -X on this variable: it must stay a string variable.
var _ *string = &metrics.Version

// ---------------------------------------------------------------- worker settings

var (
	settingsOnce sync.Once
	settingsEnv  map[string]bool
)

// workerSettings returns the environment variable names the worker reads, from the usage
// text config.Load prints for -h (cmd/worker passes -h to config.Load: this is exactly
// `worker -h`, without building the binary).
func workerSettings(t *testing.T) map[string]bool {
	t.Helper()
	settingsOnce.Do(func() {
		var out bytes.Buffer
		_, err := config.Load([]string{"-h"}, func(string) string { return "" }, &out)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("config.Load -h: %v", err)
		}
		settingsEnv = map[string]bool{}
		for _, m := range regexp.MustCompile(`\[\$([A-Z][A-Z0-9_]*)\]`).FindAllStringSubmatch(out.String(), -1) {
			settingsEnv[m[1]] = true
		}
	})
	if len(settingsEnv) < 20 {
		t.Fatalf("only %d settings found in the worker's usage text", len(settingsEnv))
	}
	return settingsEnv
}

// goRuntimeEnv are variables read by the Go runtime, not by the worker's configuration.
var goRuntimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true, "GODEBUG": true}

// checkEnvNames reports every name that is neither a worker setting nor a Go runtime variable.
func checkEnvNames(t *testing.T, where string, names []string) {
	t.Helper()
	known := workerSettings(t)
	for _, n := range names {
		if !known[n] && !goRuntimeEnv[n] {
			t.Errorf("%s: %s is not a worker setting (see `worker -h`)", where, n)
		}
	}
}

// loadWorkerConfig runs the worker's configuration loading on env, as the worker would
// at start-up, so that every value must parse and validate.
func loadWorkerConfig(t *testing.T, where string, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(nil, func(k string) string { return env[k] }, new(bytes.Buffer))
	if err != nil {
		t.Errorf("%s: the worker would not start: %v", where, err)
	}
	return cfg
}

// ---------------------------------------------------------------- YAML helpers

// yamlDocs splits a multi-document YAML file.
func yamlDocs(b []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if len(bytes.TrimSpace(stripComments(cur.Bytes()))) > 0 {
			docs = append(docs, slices.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimRight(line, " \t") == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

func stripComments(b []byte) []byte {
	var out bytes.Buffer
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out.WriteString(l)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

// decodeStrictV3 decodes one YAML document with go.yaml.in/yaml/v3, unknown fields failing
// (merge keys and anchors allowed, as docker compose reads them).
func decodeStrictV3(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return errors.New("more than one YAML document")
	}
	return nil
}

// ---------------------------------------------------------------- Kubernetes

// kustomization holds the fields of kustomize.config.k8s.io/v1beta1 Kustomization we use
// (kustomize's types are not a dependency). Decoded strictly: a field added to
// kustomization.yaml must be added here, with a check if it matters.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
		IncludeTemplates bool              `json:"includeTemplates"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
		Digest  string `json:"digest"`
	} `json:"images"`
}

// serviceMonitor holds the fields of monitoring.coreos.com/v1 ServiceMonitor we use (the
// Prometheus Operator's types are not a dependency); metadata and selectors are the real
// Kubernetes types.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any"`
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Scheme        string `json:"scheme"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
			Relabelings   []struct {
				Action       string   `json:"action"`
				SourceLabels []string `json:"sourceLabels"`
				Separator    string   `json:"separator"`
				Regex        string   `json:"regex"`
				TargetLabel  string   `json:"targetLabel"`
				Replacement  string   `json:"replacement"`
			} `json:"relabelings"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// kubeObjects is every object of deployments/kubernetes, decoded.
type kubeObjects struct {
	kust      kustomization
	namespace *corev1.Namespace
	deploy    *appsv1.Deployment
	service   *corev1.Service
	secrets   map[string]*corev1.Secret
	configs   map[string]*corev1.ConfigMap
	pdb       *policyv1.PodDisruptionBudget
	netpol    *networkingv1.NetworkPolicy
	monitor   *serviceMonitor
	files     map[string]string // object "Kind/name" → file
}

// newKubeObject returns the typed object for apiVersion and kind, or nil.
func newKubeObject(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return new(appsv1.Deployment)
	case "v1 Service":
		return new(corev1.Service)
	case "v1 Secret":
		return new(corev1.Secret)
	case "v1 ConfigMap":
		return new(corev1.ConfigMap)
	case "v1 Namespace":
		return new(corev1.Namespace)
	case "policy/v1 PodDisruptionBudget":
		return new(policyv1.PodDisruptionBudget)
	case "networking.k8s.io/v1 NetworkPolicy":
		return new(networkingv1.NetworkPolicy)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return new(serviceMonitor)
	}
	return nil
}

// decodeKubeDocs decodes every document of b strictly into its API type and files it in
// objs; it returns every problem.
func decodeKubeDocs(where string, b []byte, objs *kubeObjects) (errs []error) {
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for i, doc := range yamlDocs(b) {
		where := fmt.Sprintf("%s (document %d)", where, i+1)
		var tm metav1.TypeMeta
		if err := sigsyaml.Unmarshal(doc, &tm); err != nil {
			fail("%s: %v", where, err)
			continue
		}
		obj := newKubeObject(tm.APIVersion, tm.Kind)
		if obj == nil {
			fail("%s: %s %s has no type in this test: add it to newKubeObject", where, tm.APIVersion, tm.Kind)
			continue
		}
		if err := sigsyaml.UnmarshalStrict(doc, obj); err != nil {
			fail("%s: %s: %v", where, tm.Kind, err)
			continue
		}
		var name string
		switch o := obj.(type) {
		case *appsv1.Deployment:
			name, objs.deploy = o.Name, o
		case *corev1.Service:
			name, objs.service = o.Name, o
		case *corev1.Secret:
			name, objs.secrets[o.Name] = o.Name, o
		case *corev1.ConfigMap:
			name, objs.configs[o.Name] = o.Name, o
		case *corev1.Namespace:
			name, objs.namespace = o.Name, o
		case *policyv1.PodDisruptionBudget:
			name, objs.pdb = o.Name, o
		case *networkingv1.NetworkPolicy:
			name, objs.netpol = o.Name, o
		case *serviceMonitor:
			name, objs.monitor = o.Name, o
		}
		key := tm.Kind + "/" + name
		if name == "" {
			fail("%s: %s without a name", where, tm.Kind)
		}
		if prev, dup := objs.files[key]; dup {
			fail("%s: %s is also defined in %s", where, key, prev)
		}
		objs.files[key] = where
	}
	return errs
}

func loadKube(t *testing.T) *kubeObjects {
	t.Helper()
	objs := &kubeObjects{secrets: map[string]*corev1.Secret{}, configs: map[string]*corev1.ConfigMap{}, files: map[string]string{}}
	kb, err := os.ReadFile(filepath.Join(kubeDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sigsyaml.UnmarshalStrict(kb, &objs.kust); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if objs.kust.APIVersion != "kustomize.config.k8s.io/v1beta1" || objs.kust.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: apiVersion/kind %s/%s", objs.kust.APIVersion, objs.kust.Kind)
	}
	// Every resource listed exists, and every manifest is listed.
	entries, err := os.ReadDir(kubeDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") || e.Name() == "kustomization.yaml" {
			continue
		}
		files = append(files, e.Name())
	}
	listed := slices.Clone(objs.kust.Resources)
	sort.Strings(listed)
	if !slices.Equal(files, listed) {
		t.Errorf("kustomization.yaml resources %v, files in %s %v: they must be the same", listed, kubeDir, files)
	}
	for _, f := range objs.kust.Resources {
		b, err := os.ReadFile(filepath.Join(kubeDir, f))
		if err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", f, err)
			continue
		}
		for _, err := range decodeKubeDocs(filepath.Join(kubeDir, f), b, objs) {
			t.Error(err)
		}
	}
	return objs
}

func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	objs := loadKube(t)
	if t.Failed() {
		t.FailNow()
	}
	for what, missing := range map[string]bool{
		"Namespace": objs.namespace == nil, "Deployment": objs.deploy == nil, "Service": objs.service == nil,
		"PodDisruptionBudget": objs.pdb == nil, "NetworkPolicy": objs.netpol == nil, "ServiceMonitor": objs.monitor == nil,
		"Secret": len(objs.secrets) == 0, "ConfigMap": len(objs.configs) == 0,
	} {
		if missing {
			t.Errorf("no %s in %s", what, kubeDir)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// One namespace for everything, the kustomization's.
	ns := objs.kust.Namespace
	if ns == "" || objs.namespace.Name != ns {
		t.Errorf("kustomization namespace %q, Namespace object %q", ns, objs.namespace.Name)
	}
	metas := []*metav1.ObjectMeta{&objs.deploy.ObjectMeta, &objs.service.ObjectMeta, &objs.pdb.ObjectMeta,
		&objs.netpol.ObjectMeta, &objs.monitor.ObjectMeta}
	for _, s := range objs.secrets {
		metas = append(metas, &s.ObjectMeta)
	}
	for _, c := range objs.configs {
		metas = append(metas, &c.ObjectMeta)
	}
	for _, m := range metas {
		if m.Namespace != ns {
			t.Errorf("%s: namespace %q, want %q (so that `kubectl apply -f` works without kustomize too)", m.Name, m.Namespace, ns)
		}
	}

	d := objs.deploy
	pod := d.Spec.Template
	podLabels := labels.Set(pod.Labels)
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !selector.Matches(podLabels) {
		t.Errorf("deployment selector %v does not match its pod labels %v (%v)", d.Spec.Selector, pod.Labels, err)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("deployment: replicas %v, want several", d.Spec.Replicas)
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= workerShutdown {
		t.Errorf("terminationGracePeriodSeconds %v must exceed the worker's %v shutdown wait", g, workerShutdown)
	}
	if len(pod.Spec.TopologySpreadConstraints) == 0 {
		t.Error("deployment: no topologySpreadConstraints")
	}
	for _, tsc := range pod.Spec.TopologySpreadConstraints {
		if s, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector); err != nil || !s.Matches(podLabels) {
			t.Errorf("topology spread %s: selector does not match the pods", tsc.TopologyKey)
		}
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("deployment: %d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]

	// Security context (pod and container; the "restricted" Pod Security profile).
	psc, csc := pod.Spec.SecurityContext, c.SecurityContext
	if psc == nil || csc == nil {
		t.Fatal("deployment: pod and container securityContext are required")
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	isFalse := func(b *bool) bool { return b != nil && !*b }
	if !isTrue(csc.RunAsNonRoot) && !isTrue(psc.RunAsNonRoot) {
		t.Error("runAsNonRoot is not set")
	}
	for _, uid := range []*int64{psc.RunAsUser, csc.RunAsUser} {
		if uid != nil && *uid == 0 {
			t.Error("runAsUser 0")
		}
	}
	if !isTrue(csc.ReadOnlyRootFilesystem) {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if !isFalse(csc.AllowPrivilegeEscalation) {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) > 0 {
		t.Errorf("capabilities %+v, want drop [ALL] and nothing added", csc.Capabilities)
	}
	seccomp := psc.SeccompProfile
	if csc.SeccompProfile != nil {
		seccomp = csc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile %+v, want RuntimeDefault", seccomp)
	}
	if isTrue(pod.Spec.AutomountServiceAccountToken) || pod.Spec.AutomountServiceAccountToken == nil {
		t.Error("automountServiceAccountToken should be false: the worker never calls the Kubernetes API")
	}

	// Resources.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			t.Errorf("no %s request", r)
		}
		if q, ok := c.Resources.Limits[r]; !ok || q.IsZero() {
			t.Errorf("no %s limit", r)
		} else if q.Cmp(c.Resources.Requests[r]) < 0 {
			t.Errorf("%s limit below its request", r)
		}
	}

	// Ports and probes.
	var port corev1.ContainerPort
	for _, p := range c.Ports {
		if p.ContainerPort == workerPort {
			port = p
		}
	}
	if port.Name == "" {
		t.Fatalf("container ports %+v: want %d, named", c.Ports, workerPort)
	}
	samePort := func(p intstr.IntOrString) bool {
		return (p.Type == intstr.String && p.StrVal == port.Name) || (p.Type == intstr.Int && p.IntVal == port.ContainerPort)
	}
	for name, pr := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"startupProbe": {c.StartupProbe, "/healthz"}, "livenessProbe": {c.LivenessProbe, "/healthz"}, "readinessProbe": {c.ReadinessProbe, "/readyz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe of %s", name, pr.path)
			continue
		}
		if pr.probe.HTTPGet.Path != pr.path || !samePort(pr.probe.HTTPGet.Port) {
			t.Errorf("%s: %s on port %s, want %s on %s", name, pr.probe.HTTPGet.Path, pr.probe.HTTPGet.Port.String(), pr.path, port.Name)
		}
		if pr.probe.HTTPGet.Scheme != "" && pr.probe.HTTPGet.Scheme != corev1.URISchemeHTTP {
			t.Errorf("%s: scheme %s (the manifests configure no WEB_CONFIG_FILE)", name, pr.probe.HTTPGet.Scheme)
		}
	}

	// Environment: names, sources, and values that load.
	env := map[string]string{}
	var names []string
	secretRefs := map[string]map[string]bool{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm := objs.configs[ef.ConfigMapRef.Name]
			if cm == nil {
				t.Errorf("envFrom: no ConfigMap %q", ef.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				names = append(names, ef.Prefix+k)
				env[ef.Prefix+k] = v
			}
		case ef.SecretRef != nil:
			t.Errorf("envFrom secretRef %q: reference each key with secretKeyRef instead", ef.SecretRef.Name)
		}
	}
	for _, e := range c.Env {
		names = append(names, e.Name)
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s := objs.secrets[ref.Name]
			if s == nil {
				t.Errorf("env %s: no Secret %q", e.Name, ref.Name)
				continue
			}
			v, ok := s.StringData[ref.Key]
			if !ok {
				if b, ok2 := s.Data[ref.Key]; ok2 {
					v, ok = string(b), true
				}
			}
			if !ok {
				t.Errorf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			if secretRefs[ref.Name] == nil {
				secretRefs[ref.Name] = map[string]bool{}
			}
			secretRefs[ref.Name][ref.Key] = true
			env[e.Name] = v
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			if cm := objs.configs[ref.Name]; cm == nil {
				t.Errorf("env %s: no ConfigMap %q", e.Name, ref.Name)
			} else {
				env[e.Name] = cm.Data[ref.Key]
			}
		case e.ValueFrom.ResourceFieldRef != nil:
			if !goRuntimeEnv[e.Name] {
				t.Errorf("env %s: resourceFieldRef feeds a worker setting?", e.Name)
			}
		}
	}
	checkEnvNames(t, "deployment env", names)
	for name, s := range objs.secrets {
		keys := slices.Collect(maps.Keys(s.StringData))
		keys = append(keys, slices.Collect(maps.Keys(s.Data))...)
		for _, k := range keys {
			if !secretRefs[name][k] {
				t.Errorf("Secret %s key %s is not used by the deployment", name, k)
			}
		}
		checkEnvNames(t, "Secret "+name, keys)
	}
	cfg := loadWorkerConfig(t, "deployment env", env)
	if cfg != nil {
		if _, p, err := net.SplitHostPort(cfg.HTTPAddr); err != nil || p != strconv.Itoa(workerPort) {
			t.Errorf("HTTP_ADDR %q: want port %d (probes, Service)", cfg.HTTPAddr, workerPort)
		} else if h, _, _ := net.SplitHostPort(cfg.HTTPAddr); h == "127.0.0.1" || h == "localhost" {
			t.Errorf("HTTP_ADDR %q: probes and Prometheus cannot reach a loopback address", cfg.HTTPAddr)
		}
	}

	// The audit file: a mounted ConfigMap directory (no subPath: updates reach the pod).
	auditPath := env["AUDIT_CONFIG"]
	if auditPath == "" {
		t.Error("AUDIT_CONFIG is not set")
	}
	found := false
	for _, m := range c.VolumeMounts {
		if path.Dir(auditPath) != m.MountPath {
			continue
		}
		found = true
		if m.SubPath != "" || m.SubPathExpr != "" {
			t.Errorf("mount %s uses subPath: ConfigMap updates would not reach the pod", m.MountPath)
		}
		if !m.ReadOnly {
			t.Errorf("mount %s should be readOnly", m.MountPath)
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.ConfigMap == nil {
				t.Fatalf("volume %s is not a ConfigMap", v.Name)
			}
			cm := objs.configs[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("volume %s: no ConfigMap %q", v.Name, v.ConfigMap.Name)
			}
			data, ok := cm.Data[path.Base(auditPath)]
			if !ok {
				t.Fatalf("ConfigMap %s has no key %s (AUDIT_CONFIG=%s)", cm.Name, path.Base(auditPath), auditPath)
			}
			ac, err := audit.Parse([]byte(data))
			if err != nil {
				t.Errorf("ConfigMap %s %s: %v", cm.Name, path.Base(auditPath), err)
			} else if len(ac.Audits) == 0 {
				t.Errorf("ConfigMap %s: no audit", cm.Name)
			}
		}
	}
	if !found {
		t.Errorf("AUDIT_CONFIG %q is not in a mounted volume", auditPath)
	}

	// Service.
	svc := objs.service
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
		t.Errorf("service selector %v does not match the pods", svc.Spec.Selector)
	}
	var svcPort *corev1.ServicePort
	for i, p := range svc.Spec.Ports {
		if p.Port == workerPort {
			svcPort = &svc.Spec.Ports[i]
		}
	}
	if svcPort == nil || svcPort.Name != "http-metrics" || !samePort(svcPort.TargetPort) {
		t.Errorf("service ports %+v: want %d named http-metrics, to the container's port", svc.Spec.Ports, workerPort)
	}

	// ServiceMonitor: selects the Service, scrapes its port, and yields job="dcsjobs".
	mon := objs.monitor
	if s, err := metav1.LabelSelectorAsSelector(&mon.Spec.Selector); err != nil || !s.Matches(labels.Set(svc.Labels)) {
		t.Errorf("ServiceMonitor selector does not match the Service's labels %v", svc.Labels)
	}
	if len(mon.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor: %d endpoints, want 1", len(mon.Spec.Endpoints))
	}
	ep := mon.Spec.Endpoints[0]
	if svcPort != nil && ep.Port != svcPort.Name {
		t.Errorf("ServiceMonitor port %q, Service port %q", ep.Port, svcPort.Name)
	}
	if ep.Path != "" && ep.Path != "/metrics" {
		t.Errorf("ServiceMonitor path %q", ep.Path)
	}
	job := svc.Name // the operator's default
	if mon.Spec.JobLabel != "" {
		job = svc.Labels[mon.Spec.JobLabel]
	}
	for _, r := range ep.Relabelings {
		if r.TargetLabel == "job" && (r.Action == "" || r.Action == "replace") && len(r.SourceLabels) == 0 {
			job = r.Replacement
		}
	}
	if job != metricsJob {
		t.Errorf("the ServiceMonitor yields job=%q; the alerts select job=%q", job, metricsJob)
	}
	alerts, err := os.ReadFile(alertingRules)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(alerts), `job="`+metricsJob+`"`) {
		t.Errorf("%s does not select job=%q any more: update metricsJob and the ServiceMonitor", alertingRules, metricsJob)
	}

	// PodDisruptionBudget.
	pdb := objs.pdb
	if s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !s.Matches(podLabels) {
		t.Error("PodDisruptionBudget selector does not match the pods")
	}
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		if pdb.Spec.MaxUnavailable.IntValue() < 1 {
			t.Errorf("PodDisruptionBudget maxUnavailable %s blocks every drain", pdb.Spec.MaxUnavailable.String())
		}
	case pdb.Spec.MinAvailable != nil:
		if d.Spec.Replicas != nil && pdb.Spec.MinAvailable.Type == intstr.Int && pdb.Spec.MinAvailable.IntVal >= *d.Spec.Replicas {
			t.Error("PodDisruptionBudget minAvailable >= replicas blocks every drain")
		}
	default:
		t.Error("PodDisruptionBudget: neither minAvailable nor maxUnavailable")
	}

	// NetworkPolicy.
	np := objs.netpol
	if s, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil || !s.Matches(podLabels) || s.Empty() {
		t.Error("NetworkPolicy podSelector does not select (only) the worker pods")
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("NetworkPolicy policyTypes %v: want Ingress and Egress", np.Spec.PolicyTypes)
	}
	for i, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 || len(rule.From) == 0 {
			t.Errorf("ingress rule %d: open to every port or every peer", i)
		}
		for _, p := range rule.Ports {
			if p.Port == nil || !samePort(*p.Port) || p.EndPort != nil {
				t.Errorf("ingress rule %d: port %v, want only %d", i, p.Port, workerPort)
			}
		}
	}
	egress := map[string]bool{}
	for _, rule := range np.Spec.Egress {
		for _, p := range rule.Ports {
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			k := fmt.Sprintf("%s/%s", proto, p.Port.String())
			if p.EndPort != nil {
				k += fmt.Sprintf("-%d", *p.EndPort)
			}
			egress[k] = true
		}
	}
	for _, want := range []string{"UDP/53", "TCP/53", "TCP/6379", "TCP/26379", "TCP/7000-7005", "TCP/443"} {
		if !egress[want] {
			t.Errorf("NetworkPolicy: no egress to %s (have %v)", want, slices.Sorted(maps.Keys(egress)))
		}
	}
}

// TestKubeDecodeNegativeControl shows that the decoding is strict: misplaced and unknown
// fields, duplicate keys, wrong types and unknown kinds are reported.
func TestKubeDecodeNegativeControl(t *testing.T) {
	t.Parallel()
	const base = `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: c
          image: i
`
	newObjs := func() *kubeObjects {
		return &kubeObjects{secrets: map[string]*corev1.Secret{}, configs: map[string]*corev1.ConfigMap{}, files: map[string]string{}}
	}
	if errs := decodeKubeDocs("base", []byte(base), newObjs()); len(errs) > 0 {
		t.Fatalf("the valid base fails: %v", errs)
	}
	for name, doc := range map[string]string{
		"unknown field":    base + "          readynessProbe: {httpGet: {path: /readyz, port: 9180}}\n",
		"misplaced field":  strings.Replace(base, "      containers:", "      readOnlyRootFilesystem: true\n      containers:", 1),
		"duplicate key":    base + "          image: j\n",
		"wrong type":       strings.Replace(base, "  selector:", "  replicas: three\n  selector:", 1),
		"unknown kind":     strings.Replace(base, "kind: Deployment", "kind: StatefulSet", 1),
		"duplicate object": base + "---\n" + base,
	} {
		if errs := decodeKubeDocs(name, []byte(doc), newObjs()); len(errs) == 0 {
			t.Errorf("%s: not reported", name)
		} else {
			t.Logf("%s: %v", name, errs[0])
		}
	}
}

// TestKustomize renders the directory with `kubectl kustomize` (kustomize built into
// kubectl; offline) and decodes every rendered object strictly.
func TestKustomize(t *testing.T) {
	t.Parallel()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH: `kubectl kustomize` not run (the manifests are still decoded by TestKubernetesManifests)")
	}
	cmd := exec.Command(kubectl, "kustomize", kubeDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", kubeDir, err, stderr.String())
	}
	objs := &kubeObjects{secrets: map[string]*corev1.Secret{}, configs: map[string]*corev1.ConfigMap{}, files: map[string]string{}}
	for _, err := range decodeKubeDocs("kubectl kustomize output", out, objs) {
		t.Error(err)
	}
	if objs.deploy == nil {
		t.Fatal("no Deployment rendered")
	}
	for k, v := range map[string]string{"app.kubernetes.io/part-of": "dcsjobs"} {
		if objs.deploy.Spec.Template.Labels[k] != v {
			t.Errorf("rendered pod template lacks the common label %s=%s", k, v)
		}
	}
	t.Logf("kubectl kustomize rendered %d objects", len(objs.files))
}

// ---------------------------------------------------------------- compose

type composeFileT struct {
	Name     string                    `yaml:"name"`
	XImage   any                       `yaml:"x-image"`
	XWorker  any                       `yaml:"x-worker"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string            `yaml:"context"`
		Dockerfile string            `yaml:"dockerfile"`
		Args       map[string]string `yaml:"args"`
	} `yaml:"build"`
	Entrypoint      []string          `yaml:"entrypoint"`
	Command         []string          `yaml:"command"`
	Restart         string            `yaml:"restart"`
	DependsOn       any               `yaml:"depends_on"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
	Ports           []string          `yaml:"ports"`
	Healthcheck     map[string]any    `yaml:"healthcheck"`
	ReadOnly        bool              `yaml:"read_only"`
	CapDrop         []string          `yaml:"cap_drop"`
	SecurityOpt     []string          `yaml:"security_opt"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	Profiles        []string          `yaml:"profiles"`
}

func loadCompose(t *testing.T) composeFileT {
	t.Helper()
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFileT
	if err := decodeStrictV3(b, &c); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return c
}

// splitVolume splits a compose volume "src:dst[:mode]"; src is "" for an anonymous volume
// (sources starting with ./ are bind mounts relative to this directory).
func splitVolume(v string) (src, dst string) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 {
		return "", parts[0]
	}
	return parts[0], parts[1]
}

func TestCompose(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	for _, want := range []string{"redis", "dcs-sim", "worker-1", "worker-2", "prometheus", "grafana"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("%s: no service %s", composeFile, want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Redis: persistent, never evicting queue keys.
	redis := c.Services["redis"]
	if !strings.HasPrefix(redis.Image, "redis:7") {
		t.Errorf("redis image %q, want redis:7", redis.Image)
	}
	cmdline := strings.Join(redis.Command, " ")
	for _, want := range []string{"--appendonly yes", "--maxmemory-policy noeviction"} {
		if !strings.Contains(cmdline, want) {
			t.Errorf("redis command %q lacks %q", cmdline, want)
		}
	}

	// Volumes: bind sources exist; named volumes are declared.
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, dst := splitVolume(v)
			switch {
			case src == "":
				t.Errorf("service %s: anonymous volume %s", name, dst)
			case strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../"):
				if _, err := os.Stat(src); err != nil {
					t.Errorf("service %s: mount source %s: %v", name, src, err)
				}
			default:
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("service %s: named volume %s is not declared", name, src)
				}
			}
		}
		if s.Build != nil {
			df := filepath.Join(s.Build.Context, s.Build.Dockerfile)
			if filepath.Clean(s.Build.Context) != ".." || filepath.ToSlash(filepath.Clean(df)) != "../deployments/docker/Dockerfile" {
				t.Errorf("service %s: build %s with %s, want the repository root and %s", name, s.Build.Context, s.Build.Dockerfile, dockerfile)
			}
			if _, err := os.Stat(df); err != nil {
				t.Errorf("service %s: %v", name, err)
			}
		}
	}

	// The simulator: the image's dcs-sim, listening where the workers look.
	sim := c.Services["dcs-sim"]
	if len(sim.Entrypoint) != 1 || path.Base(sim.Entrypoint[0]) != "dcs-sim" {
		t.Errorf("dcs-sim entrypoint %v", sim.Entrypoint)
	}
	simListen := ""
	for i, a := range sim.Command {
		if a == "-listen" && i+1 < len(sim.Command) {
			simListen = sim.Command[i+1]
		}
	}
	_, simPort, err := net.SplitHostPort(simListen)
	if err != nil || strings.HasPrefix(simListen, "127.") {
		t.Errorf("dcs-sim -listen %q: want 0.0.0.0:<port>", simListen)
	}

	// The workers.
	workers := 0
	for name, s := range c.Services {
		if !strings.HasPrefix(name, "worker") {
			continue
		}
		workers++
		where := composeFile + " " + name
		if s.Image != c.Services["dcs-sim"].Image || s.Build == nil {
			t.Errorf("%s: want the same image as dcs-sim, built from %s", where, dockerfile)
		}
		checkEnvNames(t, where, slices.Collect(maps.Keys(s.Environment)))
		cfg := loadWorkerConfig(t, where, s.Environment)
		if cfg == nil {
			continue
		}
		env := s.Environment
		if env["HUAWEICLOUD_SDK_AK"] != dcssim.DefaultAK || env["HUAWEICLOUD_SDK_SK"] != dcssim.DefaultSK ||
			env["HUAWEICLOUD_SDK_PROJECT_ID"] != dcssim.DefaultProjectID {
			t.Errorf("%s: credentials and project are not the simulator's defaults", where)
		}
		if u, err := url.Parse(cfg.DCSEndpoint); err != nil || u.Hostname() != "dcs-sim" || u.Port() != simPort {
			t.Errorf("%s: DCS_ENDPOINT %q, want http://dcs-sim:%s", where, cfg.DCSEndpoint, simPort)
		}
		if u, err := url.Parse(cfg.RedisURL.Reveal()); err != nil || u.Hostname() != "redis" {
			t.Errorf("%s: REDIS_URL does not point at the redis service", where)
		}
		if h, p, err := net.SplitHostPort(cfg.HTTPAddr); err != nil || h != "0.0.0.0" || p != strconv.Itoa(workerPort) {
			t.Errorf("%s: HTTP_ADDR %q, want 0.0.0.0:%d", where, cfg.HTTPAddr, workerPort)
		}
		// AUDIT_CONFIG is a mounted file that parses.
		mounted := false
		for _, v := range s.Volumes {
			src, dst := splitVolume(v)
			if dst != cfg.AuditConfig {
				continue
			}
			mounted = true
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := audit.Parse(b); err != nil {
				t.Errorf("%s: %v", src, err)
			}
		}
		if !mounted {
			t.Errorf("%s: AUDIT_CONFIG %q is not a mounted file", where, cfg.AuditConfig)
		}
	}
	if workers < 2 {
		t.Errorf("%d worker services, want 2", workers)
	}

	// The compose audits use ids the simulator knows.
	b, err := os.ReadFile(composeAudits)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := audit.Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", composeAudits, err)
	}
	inv := dcssim.DefaultInventory()
	known := map[string]map[string]bool{}
	for _, in := range inv.Instances {
		known[in.ID] = map[string]bool{}
		for _, n := range in.Nodes {
			known[in.ID][n.ID] = true
		}
	}
	for _, a := range ac.Audits {
		nodes, ok := known[a.Instance]
		if !ok {
			t.Errorf("%s: audit %s: instance %s is not in the simulator's default inventory", composeAudits, a.Name, a.Instance)
		}
		for _, n := range a.Nodes {
			if !nodes[n] {
				t.Errorf("%s: audit %s: node %s is not a node of %s in the simulator", composeAudits, a.Name, n, a.Instance)
			}
		}
	}

	// Prometheus scrapes every worker service with job="dcsjobs", and has the rules mounted.
	var pc promConfig
	if err := decodeYAMLStrict(composePromCfg, &pc); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName != metricsJob {
			continue
		}
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	for name := range c.Services {
		if strings.HasPrefix(name, "worker") && !slices.Contains(targets, fmt.Sprintf("%s:%d", name, workerPort)) {
			t.Errorf("%s: job %s does not scrape %s:%d", composePromCfg, metricsJob, name, workerPort)
		}
	}
	prom := c.Services["prometheus"]
	mounts := map[string]string{}
	for _, v := range prom.Volumes {
		src, dst := splitVolume(v)
		mounts[dst] = src
	}
	if mounts["/etc/prometheus/prometheus.yml"] != "./"+composePromCfg {
		t.Errorf("prometheus: %s is not mounted as /etc/prometheus/prometheus.yml", composePromCfg)
	}
	for _, rf := range pc.RuleFiles {
		dst := path.Join("/etc/prometheus", rf)
		src, ok := mounts[path.Dir(dst)]
		if !ok {
			t.Errorf("prometheus: rule file %s is not mounted", dst)
			continue
		}
		if _, err := os.Stat(filepath.Join(src, path.Base(dst))); err != nil {
			t.Errorf("prometheus: rule file %s: %v", dst, err)
		}
	}

	// Grafana: provisioning mounted, the datasource reaches the prometheus service, and
	// the dashboard lands where the provider reads.
	graf := c.Services["grafana"]
	gm := map[string]string{}
	for _, v := range graf.Volumes {
		src, dst := splitVolume(v)
		gm[dst] = src
	}
	if gm["/etc/grafana/provisioning"] != "./grafana/provisioning" {
		t.Errorf("grafana: ./grafana/provisioning is not mounted at /etc/grafana/provisioning (%v)", gm)
	}
	var ds grafanaDatasources
	if err := decodeYAMLStrict(datasourcesFile, &ds); err != nil {
		t.Fatal(err)
	}
	promPort := ""
	for _, p := range prom.Ports {
		parts := strings.Split(p, ":")
		promPort = parts[len(parts)-1]
	}
	for _, d := range ds.Datasources {
		if u, err := url.Parse(d.URL); err != nil || u.Hostname() != "prometheus" || u.Port() != promPort {
			t.Errorf("%s: datasource URL %q, want http://prometheus:%s", datasourcesFile, d.URL, promPort)
		}
	}
	var dp grafanaDashboardProviders
	if err := decodeYAMLStrict(dashProviderFile, &dp); err != nil {
		t.Fatal(err)
	}
	for _, p := range dp.Providers {
		dir, _ := p.Options["path"].(string)
		dst := path.Join(dir, "dashboard.json")
		if gm[dst] != "./"+dashboardFile {
			t.Errorf("grafana: %s is not mounted at %s (the provider's path)", dashboardFile, dst)
		}
	}
}

// TestComposePromtool checks the compose Prometheus configuration with promtool, in a
// directory laid out as the container sees it (rules beside the configuration).
func TestComposePromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH: compose/prometheus.yml not checked by promtool")
	}
	dir := t.TempDir()
	copyFile(t, composePromCfg, filepath.Join(dir, "prometheus.yml"))
	if err := os.Mkdir(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{recordingRules, alertingRules} {
		copyFile(t, f, filepath.Join(dir, "rules", filepath.Base(f)))
	}
	out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config %s: %v\n%s", composePromCfg, err, out)
	}
}

// TestComposeConfig runs `docker compose config -q` when the compose plugin answers.
func TestComposeConfig(t *testing.T) {
	t.Parallel()
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker not on PATH: `docker compose config` not run")
	}
	if out, err := exec.Command(docker, "compose", "version").CombinedOutput(); err != nil {
		t.Skipf("`docker compose version` fails (%v: %s): `docker compose config` not run", err, bytes.TrimSpace(out))
	}
	out, err := exec.Command(docker, "compose", "-f", composeFile, "config", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("docker compose config -q: %v\n%s", err, out)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------- Dockerfile

// dockerInstr is one Dockerfile instruction, continuation lines joined.
type dockerInstr struct {
	line int
	cmd  string // upper case
	args string
}

func parseDockerfile(t *testing.T) []dockerInstr {
	t.Helper()
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var out []dockerInstr
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(l)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		f := strings.SplitN(cur.String(), " ", 2)
		in := dockerInstr{line: start, cmd: strings.ToUpper(f[0])}
		if len(f) == 2 {
			in.args = strings.Join(strings.Fields(f[1]), " ")
		}
		out = append(out, in)
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	instrs := parseDockerfile(t)
	var stages [][]dockerInstr
	var preamble []dockerInstr
	for _, in := range instrs {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			preamble = append(preamble, in)
			continue
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if len(stages) < 2 {
		t.Fatalf("%s: %d stages, want a multi-stage build", dockerfile, len(stages))
	}

	// Builder: golang at the go.mod version, static, trimmed, versioned; the three binaries.
	goVersion := ""
	for _, in := range preamble {
		if in.cmd == "ARG" && strings.HasPrefix(in.args, "GO_VERSION=") {
			goVersion = strings.TrimPrefix(in.args, "GO_VERSION=")
		}
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil || goVersion != string(m[1]) {
		t.Errorf("ARG GO_VERSION=%q, go.mod says go %s", goVersion, m[1])
	}
	build := stages[0]
	from := strings.Fields(build[0].args)
	if len(from) != 3 || !strings.HasPrefix(from[0], "golang:") || !strings.EqualFold(from[1], "AS") {
		t.Errorf("first stage %q: want golang:${GO_VERSION} AS <name>", build[0].args)
	}
	buildName := from[len(from)-1]
	var goBuild string
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			goBuild = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-X github.com/dcsjobs/dcsjobs/metrics.Version=${VERSION}",
		"./cmd/worker", "./cmd/enqueue", "./cmd/dcs-sim"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("%s: the go build lacks %q: %s", dockerfile, want, goBuild)
		}
	}
	for _, cmd := range []string{"worker", "enqueue", "dcs-sim"} {
		if _, err := os.Stat(filepath.Join("..", "cmd", cmd, "main.go")); err != nil {
			t.Errorf("./cmd/%s: %v", cmd, err)
		}
	}

	// Runtime: distroless static (or scratch), the binaries, non-root, port, entrypoint.
	final := stages[len(stages)-1]
	base := strings.Fields(final[0].args)[0]
	if base != "gcr.io/distroless/static-debian12:nonroot" && base != "scratch" {
		t.Errorf("final stage FROM %s: want gcr.io/distroless/static-debian12:nonroot or scratch", base)
	}
	var user, expose, entrypoint string
	copied := map[string]bool{}
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "EXPOSE":
			expose = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) > 2 && f[0] == "--from="+buildName {
				for _, src := range f[1 : len(f)-1] {
					copied[path.Base(src)] = true
				}
			}
		case "ENV":
			var names []string
			for _, kv := range strings.Fields(in.args) {
				names = append(names, strings.SplitN(kv, "=", 2)[0])
			}
			checkEnvNames(t, dockerfile+" ENV", names)
		case "RUN":
			t.Errorf("%s:%d: RUN in the final stage (distroless has no shell)", dockerfile, in.line)
		}
	}
	if uid := strings.SplitN(user, ":", 2)[0]; uid != workerImageUser {
		t.Errorf("USER %q, want %s (non-root)", user, workerImageUser)
	}
	if expose != strconv.Itoa(workerPort) {
		t.Errorf("EXPOSE %q, want %d", expose, workerPort)
	}
	if entrypoint != `["`+workerBinaryPath+`"]` {
		t.Errorf("ENTRYPOINT %s, want [%q] (exec form)", entrypoint, workerBinaryPath)
	}
	for _, b := range []string{"worker", "enqueue", "dcs-sim"} {
		if !copied[b] {
			t.Errorf("the final stage does not copy %s from the %s stage", b, buildName)
		}
	}
}

// TestDockerContext lists the packages the Dockerfile builds in a copy of the build context
// filtered by Dockerfile.dockerignore, so that an exclusion cannot drop a source or embedded
// file the binaries need. It uses the module cache only (GOPROXY=off, -mod=readonly).
func TestDockerContext(t *testing.T) {
	t.Parallel()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	b, err := os.ReadFile(dockerignore)
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "!") {
			t.Fatalf("%s: exception patterns (%s) are not supported by this test", dockerignore, l)
		}
		patterns = append(patterns, strings.TrimPrefix(path.Clean(l), "/"))
	}
	for _, need := range []string{".git", "deployments"} {
		if !slices.Contains(patterns, need) {
			t.Errorf("%s does not exclude %s", dockerignore, need)
		}
	}
	ignored := func(rel string) bool {
		for _, p := range patterns {
			if ok, _ := path.Match(p, rel); ok {
				return true
			}
			if rest, ok := strings.CutPrefix(p, "**/"); ok {
				// "**/x" matches x at any depth.
				parts := strings.Split(rel, "/")
				for i := range parts {
					if ok, _ := path.Match(rest, strings.Join(parts[i:], "/")); ok {
						return true
					}
				}
			}
		}
		return false
	}
	dst := t.TempDir()
	n := 0
	err = filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel("..", p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignored(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		n++
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gobin, "list", "-deps", "-f", "{{if .Module}}{{if not .Module.Main}}{{else}}{{.ImportPath}} {{len .EmbedFiles}}{{end}}{{end}}",
		"./cmd/worker", "./cmd/enqueue", "./cmd/dcs-sim")
	cmd.Dir = dst
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOPROXY=off", "GOFLAGS=-mod=readonly", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list in the filtered build context (%d files): %v\n%s", n, err, out)
	}
	t.Logf("build context: %d files; packages of the module built:\n%s", n, bytes.TrimSpace(out))
}

// ---------------------------------------------------------------- systemd

// unitFile is a parsed systemd unit: section → key → values in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, p string) unitFile {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	section := ""
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" || strings.HasSuffix(l, `\`) {
				t.Errorf("%s:%d: unexpected line %q", p, i+1, l)
				continue
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	return u
}

func unitFiles(t *testing.T) []string {
	t.Helper()
	units, err := filepath.Glob(filepath.Join(systemdDir, "*.service"))
	if err != nil || len(units) == 0 {
		t.Fatalf("no unit in %s (%v)", systemdDir, err)
	}
	return units
}

// envFileVars reads a systemd EnvironmentFile (KEY=value lines, # comments).
func envFileVars(t *testing.T, p string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.HasPrefix(l, "export ") || !regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) {
			t.Errorf("%s:%d: not a VAR=value line: %q", p, i+1, l)
			continue
		}
		vars[k] = strings.Trim(v, `"'`)
	}
	return vars
}

func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	example := envFileVars(t, systemdEnvFile)
	checkEnvNames(t, systemdEnvFile, slices.Collect(maps.Keys(example)))
	// The sandbox: directive → the value it must have ("*": any non-empty value).
	sandbox := map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
		"ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "RestrictNamespaces": "yes",
		"LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "RestrictRealtime": "yes",
		"RestrictSUIDSGID": "yes", "SystemCallArchitectures": "native",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "CapabilityBoundingSet": "",
		"AmbientCapabilities": "", "ReadOnlyPaths": "*", "UMask": "0077",
	}
	for _, p := range unitFiles(t) {
		u := parseUnit(t, p)
		svc := u["Service"]
		if svc == nil || u["Unit"] == nil || u["Install"] == nil {
			t.Errorf("%s: want [Unit], [Service] and [Install]", p)
			continue
		}
		one := func(k string) string {
			if v := svc[k]; len(v) > 0 {
				return v[len(v)-1]
			}
			return "<unset>"
		}
		for k, want := range sandbox {
			got := one(k)
			if (want == "*" && (got == "" || got == "<unset>")) || (want != "*" && got != want) {
				t.Errorf("%s: %s=%s, want %q", p, k, got, want)
			}
		}
		if !slices.Contains(svc["SystemCallFilter"], "@system-service") {
			t.Errorf("%s: SystemCallFilter lacks @system-service", p)
		}
		if one("ExecStart") != workerBinaryPath {
			t.Errorf("%s: ExecStart=%s, want %s", p, one("ExecStart"), workerBinaryPath)
		}
		if one("ExecReload") != "/bin/kill -HUP $MAINPID" {
			t.Errorf("%s: ExecReload=%s, want a SIGHUP (reloads the audits)", p, one("ExecReload"))
		}
		if one("Restart") != "on-failure" {
			t.Errorf("%s: Restart=%s", p, one("Restart"))
		}
		if d, err := time.ParseDuration(strings.TrimSuffix(one("TimeoutStopSec"), "s") + "s"); err != nil || d <= workerShutdown {
			t.Errorf("%s: TimeoutStopSec=%s must exceed the worker's %v shutdown wait", p, one("TimeoutStopSec"), workerShutdown)
		}
		if one("User") == "<unset>" || one("User") == "root" {
			t.Errorf("%s: User=%s: run as an unprivileged user", p, one("User"))
		}
		if ef := svc["EnvironmentFile"]; len(ef) == 0 || ef[0] != "/etc/dcsjobs/worker.env" {
			t.Errorf("%s: EnvironmentFile=%v, want /etc/dcsjobs/worker.env first", p, ef)
		}
		// Environment= names are worker settings; with the example env file, the
		// configuration loads (EnvironmentFile overrides Environment=).
		env := map[string]string{}
		for _, e := range svc["Environment"] {
			for _, kv := range strings.Fields(e) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = strings.ReplaceAll(v, "%i", "9181")
			}
		}
		checkEnvNames(t, p+" Environment=", slices.Collect(maps.Keys(env)))
		for k, v := range example {
			env[k] = v
		}
		loadWorkerConfig(t, p+" with "+systemdEnvFile, env)
	}
}

// TestSystemdAnalyze runs `systemd-analyze verify` and `systemd-analyze security --offline`
// on copies of the units whose ExecStart is an existing executable (this test binary: verify
// checks that the command exists, not what it is), so that the output must be empty.
func TestSystemdAnalyze(t *testing.T) {
	t.Parallel()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not on PATH: the units were not verified")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var copies []string
	for _, p := range unitFiles(t) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("ExecStart="+workerBinaryPath+"\n")) {
			t.Fatalf("%s: no ExecStart=%s line", p, workerBinaryPath)
		}
		b = bytes.ReplaceAll(b, []byte("ExecStart="+workerBinaryPath+"\n"), []byte("ExecStart="+self+"\n"))
		name := filepath.Base(p)
		// A template is verified as an instance, with a real instance name.
		name = strings.Replace(name, "@.service", "@9181.service", 1)
		dst := filepath.Join(dir, name)
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		copies = append(copies, dst)
	}
	cmd := exec.Command(sa, append([]string{"verify"}, copies...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Negative control: a misspelt directive is reported.
	bad := filepath.Join(dir, "bad.service")
	b, err := os.ReadFile(copies[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, bytes.Replace(b, []byte("ProtectSystem="), []byte("ProtectSytem="), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(sa, "verify", bad)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
	if out, _ := cmd.CombinedOutput(); !bytes.Contains(out, []byte("ProtectSytem")) {
		t.Errorf("systemd-analyze verify does not report a misspelt directive: %s", out)
	}
	for _, c := range copies {
		// Exposure at most 2.0 of 10 ("OK"); this unit scores 1.4 with systemd 252.
		cmd := exec.Command(sa, "security", "--offline=yes", "--threshold=20", "--no-pager", c)
		cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
		out, err := cmd.CombinedOutput()
		if err != nil && bytes.Contains(out, []byte("unrecognized option")) {
			t.Logf("systemd-analyze security --offline is not supported by this systemd: skipped")
			break
		}
		last := out
		if i := bytes.LastIndexByte(bytes.TrimSpace(out), '\n'); i >= 0 {
			last = bytes.TrimSpace(out[i:])
		}
		if err != nil {
			t.Errorf("systemd-analyze security %s: %v\n%s", filepath.Base(c), err, out)
		} else {
			t.Logf("%s", last)
		}
	}
}
