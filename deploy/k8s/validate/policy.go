package main

import (
	"fmt"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// What the rendered deploy/k8s promises (docs/quickstart.md, docs/operations.md): the names
// here are the manifests' own.
const (
	coordinatorName    = "verdict"
	etcdName           = "etcd"
	replicasWanted     = 3
	hostnameTopology   = "kubernetes.io/hostname"
	readinessPath      = "/readyz"
	livenessPath       = "/livez"
	apiServiceName     = "verdict-api"
	consoleServiceName = "verdict-console"
)

// A variable whose name says it holds a credential must come from a Secret.
var credentialName = regexp.MustCompile(`(?i)(TOKEN|PASSWORD|SECRET|KEY)`)

// An image pinned to a version (name:1.2.3, or a digest), never a floating tag.
var pinnedImage = regexp.MustCompile(`(@sha256:[0-9a-f]{64}$)|(:v?[0-9]+\.[0-9]+(\.[0-9]+)?[^:/]*$)`)

type bundle struct {
	deployments     map[string]*appsv1.Deployment
	statefulSets    map[string]*appsv1.StatefulSet
	services        []*corev1.Service
	serviceAccounts map[string]*corev1.ServiceAccount
	configMaps      map[string]*corev1.ConfigMap
	budgets         []*policyv1.PodDisruptionBudget
	networkPolicies []*networkingv1.NetworkPolicy
	secrets         []*corev1.Secret
}

func newBundle(objects []Object) bundle {
	b := bundle{
		deployments:     map[string]*appsv1.Deployment{},
		statefulSets:    map[string]*appsv1.StatefulSet{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		configMaps:      map[string]*corev1.ConfigMap{},
	}
	for _, object := range objects {
		switch value := object.Value.(type) {
		case *appsv1.Deployment:
			b.deployments[value.Name] = value
		case *appsv1.StatefulSet:
			b.statefulSets[value.Name] = value
		case *corev1.Service:
			b.services = append(b.services, value)
		case *corev1.ServiceAccount:
			b.serviceAccounts[value.Name] = value
		case *corev1.ConfigMap:
			b.configMaps[value.Name] = value
		case *policyv1.PodDisruptionBudget:
			b.budgets = append(b.budgets, value)
		case *networkingv1.NetworkPolicy:
			b.networkPolicies = append(b.networkPolicies, value)
		case *corev1.Secret:
			b.secrets = append(b.secrets, value)
		}
	}
	return b
}

// problems collects findings, each prefixed with the object it concerns.
type problems []error

func (p *problems) add(subject, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", subject, fmt.Sprintf(format, args...)))
}

func checkPolicy(objects []Object) []error {
	b := newBundle(objects)
	var p problems
	for _, secret := range b.secrets {
		p.add("Secret/"+secret.Name, "credentials are referenced, never written in the manifests")
	}
	if deployment, ok := b.deployments[coordinatorName]; ok {
		checkCoordinator(&p, b, deployment)
	} else {
		p.add("Deployment/"+coordinatorName, "missing")
	}
	if statefulSet, ok := b.statefulSets[etcdName]; ok {
		checkEtcd(&p, b, statefulSet)
	} else {
		p.add("StatefulSet/"+etcdName, "missing")
	}
	return p
}

func checkCoordinator(p *problems, b bundle, d *appsv1.Deployment) {
	subject := "Deployment/" + d.Name
	if d.Spec.Replicas == nil || *d.Spec.Replicas != replicasWanted {
		p.add(subject, "replicas must be %d", replicasWanted)
	}
	pod := d.Spec.Template
	checkPod(p, subject, b, pod)
	account, ok := b.serviceAccounts[pod.Spec.ServiceAccountName]
	if !ok {
		p.add(subject, "its ServiceAccount %q is missing", pod.Spec.ServiceAccountName)
	} else if account.AutomountServiceAccountToken == nil || *account.AutomountServiceAccountToken {
		p.add("ServiceAccount/"+account.Name, "automountServiceAccountToken must be false")
	}
	for _, container := range pod.Spec.Containers {
		csubject := subject + " container " + container.Name
		checkProbe(p, csubject+" readinessProbe", container.ReadinessProbe, readinessPath)
		checkProbe(p, csubject+" livenessProbe", container.LivenessProbe, livenessPath)
	}
	for _, name := range []string{apiServiceName, consoleServiceName} {
		if !hasServiceFor(b, name, pod) {
			p.add("Service/"+name, "missing, or it selects no coordinator pod or names no container port")
		}
	}
	checkSelectedBy(p, subject, b, pod)
}

func checkEtcd(p *problems, b bundle, s *appsv1.StatefulSet) {
	subject := "StatefulSet/" + s.Name
	if s.Spec.Replicas == nil || *s.Spec.Replicas != replicasWanted {
		p.add(subject, "replicas must be %d", replicasWanted)
	}
	if s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		p.add(subject, "podManagementPolicy must be Parallel: members wait for a quorum to start")
	}
	if len(s.Spec.VolumeClaimTemplates) == 0 {
		p.add(subject, "each member needs a volume of its own (volumeClaimTemplates)")
	}
	headless := false
	for _, service := range b.services {
		if service.Name == s.Spec.ServiceName {
			headless = service.Spec.ClusterIP == corev1.ClusterIPNone && service.Spec.PublishNotReadyAddresses
		}
	}
	if !headless {
		p.add(subject, "serviceName %q must be a headless Service publishing not-ready addresses", s.Spec.ServiceName)
	}
	checkPod(p, subject, b, s.Spec.Template)
	checkSelectedBy(p, subject, b, s.Spec.Template)
}

// checkPod: what every pod of the deployment holds to, coordinator and etcd alike.
func checkPod(p *problems, subject string, b bundle, pod corev1.PodTemplateSpec) {
	spec := pod.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		p.add(subject, "automountServiceAccountToken must be false")
	}
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		p.add(subject, "the pod securityContext must set runAsNonRoot: true")
	} else if spec.SecurityContext.RunAsUser == nil || *spec.SecurityContext.RunAsUser == 0 {
		p.add(subject, "runAsUser must be a numeric non-root uid (the kubelet cannot check a named user)")
	}
	if !hasHostAntiAffinity(spec.Affinity, pod.Labels) {
		p.add(subject, "a required pod anti-affinity on %s selecting its own pods is missing", hostnameTopology)
	}
	for _, volume := range spec.Volumes {
		if volume.ConfigMap != nil {
			if _, ok := b.configMaps[volume.ConfigMap.Name]; !ok {
				p.add(subject, "volume %s names ConfigMap %q, which is not rendered", volume.Name, volume.ConfigMap.Name)
			}
		}
	}
	for _, container := range spec.Containers {
		checkContainer(p, subject+" container "+container.Name, container)
	}
}

func checkContainer(p *problems, subject string, c corev1.Container) {
	if !pinnedImage.MatchString(c.Image) {
		p.add(subject, "image %q is not pinned to a version", c.Image)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		p.add(subject, "readOnlyRootFilesystem must be true")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		p.add(subject, "allowPrivilegeEscalation must be false")
	}
	for _, resource := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[resource]; !ok {
			p.add(subject, "no %s request", resource)
		}
		if _, ok := c.Resources.Limits[resource]; !ok {
			p.add(subject, "no %s limit", resource)
		}
	}
	if c.ReadinessProbe == nil || c.LivenessProbe == nil {
		p.add(subject, "readiness and liveness probes are both needed")
	}
	for _, env := range c.Env {
		if credentialName.MatchString(env.Name) && (env.ValueFrom == nil || env.ValueFrom.SecretKeyRef == nil) {
			p.add(subject, "%s looks like a credential: take it from a Secret (secretKeyRef)", env.Name)
		}
	}
}

func checkProbe(p *problems, subject string, probe *corev1.Probe, path string) {
	if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path {
		p.add(subject, "must be an HTTP GET of %s", path)
	}
}

// hasHostAntiAffinity: a required anti-affinity term, per machine, that selects the pod itself.
func hasHostAntiAffinity(affinity *corev1.Affinity, podLabels map[string]string) bool {
	if affinity == nil || affinity.PodAntiAffinity == nil {
		return false
	}
	for _, term := range affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
		if term.TopologyKey == hostnameTopology && term.LabelSelector != nil &&
			labels.SelectorFromSet(term.LabelSelector.MatchLabels).Matches(labels.Set(podLabels)) &&
			len(term.LabelSelector.MatchLabels) > 0 {
			return true
		}
	}
	return false
}

// checkSelectedBy: a PodDisruptionBudget and a NetworkPolicy (with ingress rules) cover the pods.
func checkSelectedBy(p *problems, subject string, b bundle, pod corev1.PodTemplateSpec) {
	podLabels := labels.Set(pod.Labels)
	budget := false
	for _, pdb := range b.budgets {
		if pdb.Spec.Selector != nil && len(pdb.Spec.Selector.MatchLabels) > 0 &&
			labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(podLabels) {
			budget = budget || pdb.Spec.MaxUnavailable != nil || pdb.Spec.MinAvailable != nil
		}
	}
	if !budget {
		p.add(subject, "no PodDisruptionBudget covers its pods")
	}
	policy := false
	for _, np := range b.networkPolicies {
		selected := len(np.Spec.PodSelector.MatchLabels) > 0 &&
			labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels).Matches(podLabels)
		policy = policy || (selected && hasPolicyType(np, networkingv1.PolicyTypeIngress))
	}
	if !policy {
		p.add(subject, "no NetworkPolicy restricts ingress to its pods")
	}
}

func hasPolicyType(np *networkingv1.NetworkPolicy, want networkingv1.PolicyType) bool {
	for _, t := range np.Spec.PolicyTypes {
		if t == want {
			return true
		}
	}
	return false
}

// hasServiceFor: the named Service selects the pods, and each of its ports targets a port the
// pod's containers declare (by name or number).
func hasServiceFor(b bundle, name string, pod corev1.PodTemplateSpec) bool {
	for _, service := range b.services {
		if service.Name != name || len(service.Spec.Selector) == 0 ||
			!labels.SelectorFromSet(service.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			continue
		}
		for _, port := range service.Spec.Ports {
			if !declaresPort(pod.Spec.Containers, port.TargetPort.String()) {
				return false
			}
		}
		return len(service.Spec.Ports) > 0
	}
	return false
}

func declaresPort(containers []corev1.Container, target string) bool {
	for _, container := range containers {
		for _, port := range container.Ports {
			if strings.EqualFold(port.Name, target) || fmt.Sprint(port.ContainerPort) == target {
				return true
			}
		}
	}
	return false
}
