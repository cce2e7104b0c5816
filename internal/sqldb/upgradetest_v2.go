//go:build upgradetest_v2

package sqldb

import (
	"embed"
	"io/fs"
	"testing/fstest"
)

//go:embed upgradetest/*.sql
var upgradeTestMigrations embed.FS

func init() {
	sub, err := fs.Sub(upgradeTestMigrations, "upgradetest")
	if err != nil {
		panic(err)
	}
	testMigrations = sub
}

// overlay is base's migrations and extra's in one directory.
func overlay(base, extra fs.FS) (fs.FS, error) {
	m := fstest.MapFS{}
	for _, f := range []fs.FS{base, extra} {
		names, err := fs.Glob(f, "*.sql")
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			b, err := fs.ReadFile(f, n)
			if err != nil {
				return nil, err
			}
			m[n] = &fstest.MapFile{Data: b, Mode: 0o444}
		}
	}
	return m, nil
}
