// Command validate checks Verdict's Kubernetes manifests offline (no cluster, no schema
// download): every document decodes strictly into its Kubernetes API type (an unknown or
// duplicated field is an error), a kustomization's files exist and it renders with kustomize's
// own library, and the rendered set keeps the deployment's promises (policy.go).
//
//	validate DIR|FILE...
//
// A directory is a kustomization: its own file and each resource it lists are decoded, then it
// is rendered and the rendered set is decoded and checked. A file is only decoded. Exit 0 when
// everything holds, 1 with one line per problem otherwise, 2 on bad usage.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: validate DIR|FILE...")
		os.Exit(2)
	}
	var problems []error
	for _, path := range os.Args[1:] {
		problems = append(problems, validatePath(path)...)
	}
	for _, problem := range problems {
		fmt.Println("problem:", problem)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}

func validatePath(path string) []error {
	info, err := os.Stat(path)
	if err != nil {
		return []error{err}
	}
	if info.IsDir() {
		return validateKustomization(path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return []error{err}
	}
	objects, errs := decodeAll(path, data)
	report(path, objects)
	return errs
}

// validateKustomization decodes the kustomization and its sources, renders it, decodes the
// rendered output and checks it.
func validateKustomization(dir string) []error {
	file := filepath.Join(dir, "kustomization.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		return []error{err}
	}
	objects, errs := decodeAll(file, data)
	if len(errs) > 0 {
		return errs
	}
	if len(objects) != 1 {
		return []error{fmt.Errorf("%s: one Kustomization document expected, found %d", file, len(objects))}
	}
	kustomization, ok := objects[0].Value.(*types.Kustomization)
	if !ok {
		return []error{fmt.Errorf("%s: not a Kustomization", file)}
	}
	for _, source := range sourceFiles(kustomization) {
		path := filepath.Join(dir, source)
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s lists %s: %w", file, source, err))
			continue
		}
		if isResource(kustomization, source) {
			_, decodeErrs := decodeAll(path, data)
			errs = append(errs, decodeErrs...)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	rendered, err := render(dir)
	if err != nil {
		return []error{fmt.Errorf("kustomize %s: %w", dir, err)}
	}
	objects, errs = decodeAll(dir+" (rendered)", rendered)
	if len(errs) > 0 {
		return errs
	}
	report(dir+" (rendered)", objects)
	return checkPolicy(objects)
}

// sourceFiles: the resources and the generators' files a kustomization names, in order.
func sourceFiles(k *types.Kustomization) []string {
	files := append([]string{}, k.Resources...)
	var generators []types.GeneratorArgs
	for _, generator := range k.ConfigMapGenerator {
		generators = append(generators, generator.GeneratorArgs)
	}
	for _, generator := range k.SecretGenerator {
		generators = append(generators, generator.GeneratorArgs)
	}
	for _, generator := range generators {
		for _, source := range generator.FileSources {
			// `key=path` names the key; the file is the path.
			files = append(files, source[strings.Index(source, "=")+1:])
		}
	}
	return files
}

func isResource(k *types.Kustomization, file string) bool {
	for _, resource := range k.Resources {
		if resource == file {
			return true
		}
	}
	return false
}

// render runs kustomize's own library (what `kubectl apply -k` runs) on the directory.
func render(dir string) ([]byte, error) {
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	if resources.Size() == 0 {
		return nil, errors.New("renders no resource")
	}
	return resources.AsYaml()
}

func report(source string, objects []Object) {
	names := make([]string, 0, len(objects))
	for _, object := range objects {
		names = append(names, object.String())
	}
	sort.Strings(names)
	fmt.Printf("decoded %s: %d documents %v\n", source, len(objects), names)
}
