//go:build !upgradetest_v2

package sqldb

import (
	"errors"
	"io/fs"
)

// overlay exists only in the upgrade tests' builds.
func overlay(fs.FS, fs.FS) (fs.FS, error) {
	return nil, errors.New("sqldb: test migrations in a release build")
}
