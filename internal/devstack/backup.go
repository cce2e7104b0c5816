package devstack

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/tetherhq/tether/internal/localbackup"
)

// BackupsDir holds the backups taken before each upgrade or rollback:
// DATA_DIR.backups/<UTC time>-<label>/, beside the data dir and not in it,
// because a restore sets the whole data dir aside. Each is a tetherctl
// backup (internal/localbackup: the database, the documents it refers to
// and a manifest of their sums), which tetherctl restore --from takes back.
func BackupsDir(dataDir string) string { return filepath.Clean(dataDir) + ".backups" }

var backupLabelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$`)

// backup takes a localbackup of the running stack into a new directory
// under BackupsDir and returns its path.
func backup(ctx context.Context, dataDir, label string, now time.Time) (string, error) {
	if !backupLabelRE.MatchString(label) {
		return "", fmt.Errorf("backup label %q: want 1-64 letters, digits, '.', '+', '_' or '-'", label)
	}
	dir := filepath.Join(BackupsDir(dataDir), now.UTC().Format("20060102T150405Z")+"-"+label)
	if _, err := localbackup.Backup(ctx, dataDir, dir, now); err != nil {
		return "", fmt.Errorf("backup into %s: %w", dir, err)
	}
	return dir, nil
}
