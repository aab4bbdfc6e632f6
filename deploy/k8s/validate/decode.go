package main

import (
	"bytes"
	"fmt"
	"regexp"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// The kinds deploy/k8s may hold, each with the Go type the API server decodes it into. A kind
// outside this table is refused: it could not be checked.
var kinds = map[string]func() any{
	"v1/Namespace":                       func() any { return &corev1.Namespace{} },
	"v1/ServiceAccount":                  func() any { return &corev1.ServiceAccount{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"v1/ConfigMap":                       func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                          func() any { return &corev1.Secret{} },
	"apps/v1/Deployment":                 func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                func() any { return &appsv1.StatefulSet{} },
	"policy/v1/PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
	"kustomize.config.k8s.io/v1beta1/Kustomization": func() any { return &types.Kustomization{} },
}

// Object is one decoded document: its kind, its name and the typed value.
type Object struct {
	Kind  string
	Name  string
	Value any
}

func (o Object) String() string { return o.Kind + "/" + o.Name }

var separator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments splits a multi-document YAML stream, dropping documents with no content.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, doc := range separator.Split(string(data), -1) {
		if len(bytes.TrimSpace(stripComments([]byte(doc)))) > 0 {
			docs = append(docs, []byte(doc))
		}
	}
	return docs
}

var commentLine = regexp.MustCompile(`(?m)^[ \t]*#.*$`)

func stripComments(doc []byte) []byte { return commentLine.ReplaceAll(doc, nil) }

// decodeStrict decodes one document into its API type, refusing unknown and duplicate fields
// (sigs.k8s.io/yaml's UnmarshalStrict: YAML to JSON, then DisallowUnknownFields).
func decodeStrict(doc []byte) (Object, error) {
	var meta struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return Object{}, fmt.Errorf("not YAML: %w", err)
	}
	key := meta.APIVersion + "/" + meta.Kind
	make, ok := kinds[key]
	if !ok {
		return Object{}, fmt.Errorf("apiVersion %q kind %q is not a kind this validator knows", meta.APIVersion, meta.Kind)
	}
	value := make()
	if err := yaml.UnmarshalStrict(doc, value); err != nil {
		return Object{}, fmt.Errorf("%s %q: %w", meta.Kind, meta.Metadata.Name, err)
	}
	return Object{Kind: meta.Kind, Name: meta.Metadata.Name, Value: value}, nil
}

// decodeAll decodes every document of a stream, naming the source in each error.
func decodeAll(source string, data []byte) ([]Object, []error) {
	var objects []Object
	var errs []error
	for i, doc := range splitDocuments(data) {
		object, err := decodeStrict(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (document %d): %w", source, i+1, err))
			continue
		}
		objects = append(objects, object)
	}
	return objects, errs
}
