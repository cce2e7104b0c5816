package planestore_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The audit log is append-only in code: no statement of the plane's, in any
// Go file of the store or the API above it or in a migration, updates or
// deletes plane_audit rows, or drops the table.
func TestAuditLogHasNoUpdateOrDelete(t *testing.T) {
	bad := regexp.MustCompile(`(?is)(UPDATE\s+plane_audit\b|DELETE\s+FROM\s+plane_audit\b|DROP\s+TABLE\s+(IF\s+EXISTS\s+)?plane_audit\b|TRUNCATE\s+(TABLE\s+)?plane_audit\b)`)
	files, _ := filepath.Glob("*.go")
	api, _ := filepath.Glob("../*.go")
	files = append(files, api...)
	migrations, _ := filepath.Glob("migrations/*.sql")
	checked := 0
	for _, f := range append(files, migrations...) {
		if strings.HasSuffix(f, "_test.go") {
			continue // tests break the table on purpose
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		if m := bad.Find(b); m != nil {
			t.Errorf("%s changes the audit log: %q", f, m)
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d files", checked)
	}
}
