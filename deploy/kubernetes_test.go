package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec      yaml.Node         `yaml:"spec"`
	Resources []string          `yaml:"resources"`  // Kustomization
	Data      map[string]string `yaml:"stringData"` // Secret
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe  *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe   *k8sProbe `yaml:"livenessProbe"`
	SecurityContext *struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

type k8sDeploymentSpec struct {
	Replicas int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			SecurityContext struct {
				RunAsNonRoot *bool `yaml:"runAsNonRoot"`
				RunAsUser    int   `yaml:"runAsUser"`
			} `yaml:"securityContext"`
			InitContainers []k8sContainer `yaml:"initContainers"`
			Containers     []k8sContainer `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

// loadKubernetes parses every document of deploy/kubernetes/*.yaml, by kind.
func loadKubernetes(t *testing.T) map[string][]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "deploy/kubernetes/*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no deploy/kubernetes/*.yaml: %v", err)
	}
	out := map[string][]k8sObject{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind == "" {
				t.Errorf("%s: a document without kind", f)
			}
			out[o.Kind] = append(out[o.Kind], o)
		}
	}
	return out
}

func one(t *testing.T, objs map[string][]k8sObject, kind string) k8sObject {
	t.Helper()
	if len(objs[kind]) != 1 {
		t.Fatalf("deploy/kubernetes has %d %s, want 1", len(objs[kind]), kind)
	}
	return objs[kind][0]
}

// spec decodes the spec of the one object of kind into v.
func spec(t *testing.T, objs map[string][]k8sObject, kind string, v any) {
	t.Helper()
	o := one(t, objs, kind)
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%s %s: %v", kind, o.Metadata.Name, err)
	}
}

func TestKubernetes(t *testing.T) {
	facts := imageFacts(t)
	objs := loadKubernetes(t)

	var dep k8sDeploymentSpec
	spec(t, objs, "Deployment", &dep)
	pod := dep.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	portNames := map[string]int{}
	for _, p := range c.Ports {
		portNames[p.Name] = p.ContainerPort
	}
	if want, _ := strconv.Atoi(facts.port); len(c.Ports) != 1 || c.Ports[0].ContainerPort != want {
		t.Errorf("container ports %v, want the image's %s", c.Ports, facts.port)
	}
	resolve := func(port any) int {
		switch p := port.(type) {
		case int:
			return p
		case string:
			if n, ok := portNames[p]; ok {
				return n
			}
		}
		return -1
	}
	for _, probe := range []struct {
		name string
		p    *k8sProbe
		path string
	}{
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
	} {
		if probe.p == nil || probe.p.HTTPGet == nil {
			t.Errorf("the container has no HTTP %s", probe.name)
			continue
		}
		if probe.p.HTTPGet.Path != probe.path {
			t.Errorf("%s path %q, want %s", probe.name, probe.p.HTTPGet.Path, probe.path)
		}
		if got := resolve(probe.p.HTTPGet.Port); got != c.Ports[0].ContainerPort {
			t.Errorf("%s port %v is not the container port %d", probe.name, probe.p.HTTPGet.Port, c.Ports[0].ContainerPort)
		}
	}

	secrets := map[string]k8sObject{}
	for _, o := range objs["Secret"] {
		secrets[o.Metadata.Name] = o
	}
	for _, ct := range append(slices.Clone(pod.InitContainers), c) {
		env := map[string]string{}
		fromSecret := map[string]bool{}
		for _, e := range ct.Env {
			env[e.Name] = e.Value
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef
				if secrets[ref.Name].Data[ref.Key] == "" {
					t.Errorf("%s: %s from secret %s key %s, which secret.example.yaml does not define", ct.Name, e.Name, ref.Name, ref.Key)
				}
				fromSecret[e.Name] = true
			}
		}
		if !fromSecret["AUTHD_DATABASE_URL"] {
			t.Errorf("%s: AUTHD_DATABASE_URL does not come from a Secret", ct.Name)
		}
		// Several replicas share one budget of guesses only through Redis.
		if ct.Name == c.Name && dep.Replicas > 1 && (env["AUTHD_RATELIMIT_BACKEND"] != "redis" || !fromSecret["AUTHD_REDIS_URL"]) {
			t.Errorf("%s: %d replicas with AUTHD_RATELIMIT_BACKEND=%q and AUTHD_REDIS_URL not from a Secret: each replica would allow the whole burst",
				ct.Name, dep.Replicas, env["AUTHD_RATELIMIT_BACKEND"])
		}
		if _, port, _ := strings.Cut(env["AUTHD_LISTEN"], ":"); env["AUTHD_LISTEN"] != "" && port != facts.port {
			t.Errorf("%s: AUTHD_LISTEN=%q is not the container port", ct.Name, env["AUTHD_LISTEN"])
		}
		sc := ct.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: securityContext must set readOnlyRootFilesystem, no privilege escalation and drop ALL capabilities", ct.Name)
		}
		if ct.Resources.Requests["cpu"] == "" || ct.Resources.Requests["memory"] == "" || ct.Resources.Limits["memory"] == "" {
			t.Errorf("%s: resources want cpu and memory requests and a memory limit, got %+v", ct.Name, ct.Resources)
		}
		if ct.Image != c.Image {
			t.Errorf("%s runs image %s, authd %s", ct.Name, ct.Image, c.Image)
		}
	}
	if len(pod.InitContainers) > 0 && !slices.Equal(pod.InitContainers[0].Args, []string{"migrate", "up"}) {
		t.Errorf("init container args %v, want [migrate up]", pod.InitContainers[0].Args)
	}
	if !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("container args %v, want [serve]", c.Args)
	}
	if sc := pod.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser != facts.uid {
		t.Errorf("pod securityContext: want runAsNonRoot and runAsUser %d (the image's USER)", facts.uid)
	}

	podLabels := dep.Template.Metadata.Labels
	selects := func(sel map[string]string) bool {
		for k, v := range sel {
			if podLabels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !selects(dep.Selector.MatchLabels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", dep.Selector.MatchLabels, podLabels)
	}

	var svc struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	spec(t, objs, "Service", &svc)
	if !selects(svc.Selector) {
		t.Errorf("the Service's selector %v does not select the pods %v", svc.Selector, podLabels)
	}
	if len(svc.Ports) != 1 || resolve(svc.Ports[0].TargetPort) != c.Ports[0].ContainerPort {
		t.Errorf("the Service's ports %+v do not target the container port", svc.Ports)
	}

	var pdb struct {
		MinAvailable int `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	}
	spec(t, objs, "PodDisruptionBudget", &pdb)
	if !selects(pdb.Selector.MatchLabels) {
		t.Errorf("the PodDisruptionBudget's selector %v does not select the pods %v", pdb.Selector.MatchLabels, podLabels)
	}
	if pdb.MinAvailable < 1 || pdb.MinAvailable >= dep.Replicas {
		t.Errorf("minAvailable %d with %d replicas: want at least 1 and fewer than the replicas, or no node can be drained", pdb.MinAvailable, dep.Replicas)
	}

	// Trusted proxies: the ingress controller's own addresses, never a
	// range as wide as a pod network, in which any pod could set
	// X-Forwarded-For.
	var trusted string
	for _, e := range c.Env {
		if e.Name == "AUTHD_TRUSTED_PROXIES" {
			trusted = e.Value
		}
	}
	if trusted == "" {
		t.Error("the container does not set AUTHD_TRUSTED_PROXIES (the ingress controller's addresses)")
	}
	for _, f := range strings.Split(trusted, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(f))
		if err != nil {
			t.Errorf("AUTHD_TRUSTED_PROXIES %q: %v", f, err)
			continue
		}
		if p.Addr().Is4() && p.Bits() < 24 || !p.Addr().Is4() && p.Bits() < 120 {
			t.Errorf("AUTHD_TRUSTED_PROXIES %s is as wide as a pod network: list the ingress controller's addresses", p)
		}
	}

	// A NetworkPolicy admits only the ingress controller (and Prometheus)
	// to authd's pods, on its port.
	var np struct {
		PodSelector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"podSelector"`
		PolicyTypes []string `yaml:"policyTypes"`
		Ingress     []struct {
			From []struct {
				NamespaceSelector *struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"namespaceSelector"`
				PodSelector *struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"podSelector"`
				IPBlock any `yaml:"ipBlock"`
			} `yaml:"from"`
			Ports []struct {
				Port any `yaml:"port"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	}
	spec(t, objs, "NetworkPolicy", &np)
	if !selects(np.PodSelector.MatchLabels) {
		t.Errorf("the NetworkPolicy's podSelector %v does not select the pods %v", np.PodSelector.MatchLabels, podLabels)
	}
	if !slices.Contains(np.PolicyTypes, "Ingress") {
		t.Errorf("the NetworkPolicy's policyTypes %v do not restrict Ingress", np.PolicyTypes)
	}
	if len(np.Ingress) == 0 {
		t.Error("the NetworkPolicy admits nothing: the ingress controller must reach authd")
	}
	for i, rule := range np.Ingress {
		if len(rule.From) == 0 {
			t.Errorf("NetworkPolicy ingress rule %d admits every source", i)
		}
		for _, from := range rule.From {
			if from.IPBlock != nil || from.PodSelector == nil || len(from.PodSelector.MatchLabels) == 0 ||
				from.NamespaceSelector == nil || len(from.NamespaceSelector.MatchLabels) == 0 {
				t.Errorf("NetworkPolicy ingress rule %d: each source wants a namespaceSelector and a podSelector with labels, got %+v", i, from)
			}
		}
		if len(rule.Ports) == 0 {
			t.Errorf("NetworkPolicy ingress rule %d admits every port", i)
		}
		for _, p := range rule.Ports {
			if resolve(p.Port) != c.Ports[0].ContainerPort {
				t.Errorf("NetworkPolicy ingress rule %d port %v is not authd's port", i, p.Port)
			}
		}
	}

	// kubectl apply -k applies everything but the example Secret.
	k := one(t, objs, "Kustomization")
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(root, "deploy/kubernetes", r)); err != nil {
			t.Error(err)
		}
	}
	for _, want := range []string{"deployment.yaml", "service.yaml", "pdb.yaml", "networkpolicy.yaml"} {
		if !slices.Contains(k.Resources, want) {
			t.Errorf("kustomization.yaml does not list %s", want)
		}
	}
	if slices.Contains(k.Resources, "secret.example.yaml") {
		t.Error("kustomization.yaml applies the example Secret")
	}
}
