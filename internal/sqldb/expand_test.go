package sqldb

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// contractMigrations lists migrations allowed to remove or narrow what an
// earlier release uses, each with the reason it is safe. A rollback returns
// to the previous release's binaries on the newer schema without a
// down-migration, so such a migration may only ship once no release that a
// rollback can return to uses what it removes (the contract step of an
// expand/contract change), and the rollback runbook must say so.
var contractMigrations = map[string]string{}

// breaking names the kinds of statement that stop an older binary working:
// it loses a table or column it reads, finds one under another name, or has
// its inserts refused by a constraint it does not know to satisfy.
var breaking = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`(?i)\bDROP\s+(TABLE|VIEW)\b`), "drops a table or view"},
	{regexp.MustCompile(`(?i)\bDROP\s+COLUMN\b`), "drops a column"},
	{regexp.MustCompile(`(?i)\bALTER\s+TABLE\s+\S+\s+DROP\s+"?\w+"?\s*($|CASCADE|RESTRICT)`), "drops a column"},
	{regexp.MustCompile(`(?i)\bRENAME\b`), "renames a table or column"},
	{regexp.MustCompile(`(?i)\bALTER\s+COLUMN\b.*\b(TYPE|SET\s+NOT\s+NULL|SET\s+DATA\s+TYPE)\b`), "changes a column's type or makes it NOT NULL"},
	{regexp.MustCompile(`(?i)\bADD\s+(CONSTRAINT|CHECK|FOREIGN\s+KEY|UNIQUE|PRIMARY\s+KEY)\b`), "adds a constraint older inserts do not know about"},
	{regexp.MustCompile(`(?i)\bCREATE\s+UNIQUE\s+INDEX\b`), "adds a uniqueness rule older inserts do not know about"},
	{regexp.MustCompile(`(?i)\bTRUNCATE\b`), "empties a table"},
}

// addNotNull matches ADD [COLUMN] ... NOT NULL; it is breaking unless the
// column has a DEFAULT (older binaries' inserts omit the column).
var addNotNull = regexp.MustCompile(`(?i)\bADD\s+(COLUMN\s+)?.*\bNOT\s+NULL\b`)
var hasDefault = regexp.MustCompile(`(?i)\bDEFAULT\b`)

// upStatements returns the statements of a goose migration's Up section,
// comments removed.
func upStatements(src string) []string {
	var up strings.Builder
	inUp := false
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "-- +goose Up"):
			inUp = true
			continue
		case strings.HasPrefix(trimmed, "-- +goose Down"):
			inUp = false
			continue
		}
		if !inUp {
			continue
		}
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		up.WriteString(line + "\n")
	}
	var stmts []string
	for _, s := range strings.Split(up.String(), ";") {
		if s = strings.Join(strings.Fields(s), " "); s != "" {
			stmts = append(stmts, s)
		}
	}
	return stmts
}

// contractions says what in a migration's Up section an older binary
// cannot live with; none for an expand-only migration.
func contractions(src string) []string {
	var found []string
	for _, st := range upStatements(src) {
		for _, b := range breaking {
			if b.re.MatchString(st) {
				found = append(found, b.what+": "+st)
			}
		}
		if addNotNull.MatchString(st) && !hasDefault.MatchString(st) {
			found = append(found, "adds a NOT NULL column without a DEFAULT, which older inserts leave out: "+st)
		}
	}
	return found
}

// TestMigrationsExpandOnly keeps every docsvc migration additive, so that a
// rollback never needs a down-migration (docs/runbooks/rollback.md);
// TestPreviousReleaseOnNewSchema in internal/docsvc proves it with the
// previous release's binaries.
func TestMigrationsExpandOnly(t *testing.T) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := strings.TrimPrefix(f, "migrations/")
		seen[name] = true
		src, err := fs.ReadFile(migrations, f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), "-- +goose Up") {
			t.Errorf("%s has no '-- +goose Up' section", name)
			continue
		}
		found := contractions(string(src))
		reason, allowed := contractMigrations[name]
		switch {
		case len(found) > 0 && !allowed:
			t.Errorf("%s is not expand-only, so the previous release could not run on its schema after a rollback:\n  %s\n"+
				"split it: add now (new columns nullable or with a DEFAULT, new tables, new indexes), remove in a later release; "+
				"or, once no release a rollback can reach uses what it removes, list it in contractMigrations with the reason",
				name, strings.Join(found, "\n  "))
		case allowed && len(found) == 0:
			t.Errorf("%s is listed in contractMigrations (%q) but removes nothing: take it off the list", name, reason)
		}
	}
	for name := range contractMigrations {
		if !seen[name] {
			t.Errorf("contractMigrations lists %s, which is not a migration", name)
		}
	}
}

// The check itself: each kind of contraction is caught, in the Up section
// only, and additive statements pass.
func TestContractionsFound(t *testing.T) {
	const header = "-- +goose Up\n"
	const down = "\n-- +goose Down\nDROP TABLE things;\nALTER TABLE t DROP COLUMN c;\n"
	for _, bad := range []string{
		"DROP TABLE documents;",
		"drop view v;",
		"ALTER TABLE api_tokens DROP COLUMN revoked_at;",
		"ALTER TABLE api_tokens DROP revoked_at;",
		"ALTER TABLE documents RENAME COLUMN owner TO owner_id;",
		"ALTER TABLE documents RENAME TO docs;",
		"ALTER TABLE documents ALTER COLUMN size_bytes TYPE TEXT;",
		"ALTER TABLE documents ALTER COLUMN owner SET NOT NULL;",
		"ALTER TABLE documents ADD COLUMN tenant TEXT NOT NULL;",
		"ALTER TABLE documents ADD tenant TEXT\n  NOT NULL;",
		"ALTER TABLE documents ADD CONSTRAINT size_positive CHECK (size_bytes > 0);",
		"CREATE UNIQUE INDEX documents_blob ON documents (blob_key);",
		"TRUNCATE jobs;",
	} {
		if got := contractions(header + bad + down); len(got) == 0 {
			t.Errorf("not caught: %s", bad)
		}
	}
	for _, good := range []string{
		"CREATE TABLE things (id TEXT PRIMARY KEY, n INTEGER NOT NULL);",
		"ALTER TABLE documents ADD COLUMN tenant TEXT NOT NULL DEFAULT '';",
		"ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;",
		"CREATE INDEX documents_owner ON documents (owner);",
		"-- DROP TABLE documents; in a comment\nCREATE INDEX x ON documents (status);",
		"UPDATE documents SET owner = 'x' WHERE owner = '';",
	} {
		if got := contractions(header + good + down); len(got) > 0 {
			t.Errorf("additive statement flagged: %s: %v", good, got)
		}
	}
}
