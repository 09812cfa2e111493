// SPDX-License-Identifier: LGPL-2.1-or-later
// Renders a Helm chart's templates as `helm template` does, for tests/test-chart.py (helm is not
// in Debian): Go's text/template -- the engine helm uses -- over the chart's values.yaml merged
// with an override file, with the part of helm's function map the chart uses (toYaml, toJson,
// indent, nindent, default, quote, required). A function the chart uses that is not here is an
// error, so the chart cannot drift from what this renders.
//
//	go run tests/chart-render.go CHART_DIR [VALUES_OVERRIDE.yaml]   (GO111MODULE=off)
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"
)

func empty(v interface{}) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.String, reflect.Map, reflect.Slice, reflect.Array:
		return r.Len() == 0
	case reflect.Bool:
		return !r.Bool()
	case reflect.Int, reflect.Int64, reflect.Int32:
		return r.Int() == 0
	case reflect.Float64, reflect.Float32:
		return r.Float() == 0
	}
	return false
}

func toYaml(v interface{}) (string, error) {
	var b bytes.Buffer
	e := yaml.NewEncoder(&b)
	e.SetIndent(2)
	if err := e.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

var funcs = template.FuncMap{
	"toYaml": toYaml,
	"toJson": func(v interface{}) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"indent":  indent,
	"nindent": func(n int, s string) string { return "\n" + indent(n, s) },
	"default": func(d interface{}, v ...interface{}) interface{} {
		if len(v) == 0 || empty(v[0]) {
			return d
		}
		return v[0]
	},
	"quote": func(v interface{}) string { return fmt.Sprintf("%q", fmt.Sprint(v)) },
	"required": func(msg string, v interface{}) (interface{}, error) {
		if empty(v) {
			return nil, fmt.Errorf("%s", msg)
		}
		return v, nil
	},
}

// merge copies over onto base, maps recursively (helm's --values).
func merge(base, over map[string]interface{}) {
	for k, v := range over {
		if bm, ok := base[k].(map[string]interface{}); ok {
			if om, ok := v.(map[string]interface{}); ok {
				merge(bm, om)
				continue
			}
		}
		base[k] = v
	}
}

func load(path string) (map[string]interface{}, error) {
	m := map[string]interface{}{}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return m, yaml.Unmarshal(b, &m)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: chart-render CHART_DIR [VALUES.yaml]")
		os.Exit(2)
	}
	dir := os.Args[1]
	values, err := load(filepath.Join(dir, "values.yaml"))
	if err == nil && len(os.Args) > 2 {
		var over map[string]interface{}
		if over, err = load(os.Args[2]); err == nil {
			merge(values, over)
		}
	}
	chart, err2 := load(filepath.Join(dir, "Chart.yaml"))
	if err != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "chart-render:", err, err2)
		os.Exit(1)
	}
	data := map[string]interface{}{
		"Values":  values,
		"Release": map[string]interface{}{"Name": "inlets-operator", "Namespace": "inlets", "Service": "Helm"},
		"Chart":   map[string]interface{}{"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
	}
	files, _ := filepath.Glob(filepath.Join(dir, "templates", "*.yaml"))
	sort.Strings(files)
	for _, f := range files {
		t, err := template.New(filepath.Base(f)).Funcs(funcs).Option("missingkey=error").ParseFiles(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chart-render:", err)
			os.Exit(1)
		}
		var out bytes.Buffer
		if err := t.Execute(&out, data); err != nil {
			fmt.Fprintln(os.Stderr, "chart-render:", err)
			os.Exit(1)
		}
		fmt.Printf("---\n# Source: templates/%s\n%s\n", filepath.Base(f), strings.TrimSpace(out.String()))
	}
}
