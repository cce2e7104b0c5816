package doccheck

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// refusedKeys are keys deployconfig knows only to refuse them, with why.
// They are left out of the file's shape and need no row of their own.
var refusedKeys = map[string]string{
	"adopt.secrets.database": "RDS manages the database password; the row of adopt.secrets says why",
}

// yamlKey is one key of deployment.yaml, from deployconfig.Config's tags.
type yamlKey struct {
	path  string // dotted, e.g. "domain.hosted_zone.id"
	depth int
	typ   reflect.Type
	// leaf is true for a key that takes a value (a list of objects
	// included); false for an object whose keys follow.
	leaf bool
}

func yamlKeys(t reflect.Type, prefix string, depth int) []yamlKey {
	var out []yamlKey
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		ft := sf.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		k := yamlKey{path: prefix + name, depth: depth, typ: ft, leaf: ft.Kind() != reflect.Struct}
		out = append(out, k)
		if !k.leaf {
			out = append(out, yamlKeys(ft, k.path+".", depth+1)...)
		}
	}
	return out
}

func yamlType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "<string>"
	case reflect.Int:
		return "<integer>"
	case reflect.Bool:
		return "<true|false>"
	}
	return "<" + t.String() + ">"
}

// DeploymentKeys renders the shape of deployment.yaml: every key
// deployconfig reads, nested as in the file, with the kind of value it
// takes.
func DeploymentKeys() (string, error) {
	var b strings.Builder
	b.WriteString("```yaml\n")
	for _, k := range yamlKeys(reflect.TypeFor[deployconfig.Config](), "", 0) {
		if refusedKeys[k.path] != "" {
			continue
		}
		indent := strings.Repeat("  ", k.depth)
		name := k.path[strings.LastIndex(k.path, ".")+1:]
		switch {
		case !k.leaf:
			fmt.Fprintf(&b, "%s%s:\n", indent, name)
		case k.typ.Kind() == reflect.Slice && k.typ.Elem().Kind() == reflect.Struct:
			fmt.Fprintf(&b, "%s%s:\n", indent, name)
			for i, f := range yamlKeys(k.typ.Elem(), "", 0) {
				lead := "  "
				if i == 0 {
					lead = "- "
				}
				fmt.Fprintf(&b, "%s  %s%s: %s\n", indent, lead, f.path, yamlType(f.typ))
			}
		case k.typ.Kind() == reflect.Slice:
			fmt.Fprintf(&b, "%s%s: [%s, ...]\n", indent, name, yamlType(k.typ.Elem()))
		default:
			fmt.Fprintf(&b, "%s%s: %s\n", indent, name, yamlType(k.typ))
		}
	}
	b.WriteString("```")
	return b.String(), nil
}
