package devstack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/tetherhq/tether/internal/localbackup"
)

// The local runtime's data directory holds docsvc's state in these two
// places (see Run): what tetherctl's backup and jobs commands work on.
const (
	DatabaseFile = localbackup.DatabaseFile
	BlobDir      = localbackup.BlobDir
)

// DocsvcStorageEnv is docsvc's configuration of the local runtime's
// database, documents and queue in dataDir, for docsvc commands run
// against a stack that tetherctl dev made.
func DocsvcStorageEnv(dataDir string) []string {
	return []string{
		"DOCSVC_DATABASE_URL=sqlite://" + filepath.Join(dataDir, DatabaseFile),
		"DOCSVC_BLOB_URL=file://" + filepath.Join(dataDir, BlobDir),
		"DOCSVC_QUEUE_URL=db://jobs",
	}
}

// DocsvcBinary finds the docsvc that runs the stack in dataDir: the release
// an upgrade or rollback installed (RunningFile), else the one tetherctl dev
// built into dataDir/bin, else the one beside tetherctl or on PATH.
func DocsvcBinary(dataDir string) (string, error) {
	if rel, installed, err := readRunning(dataDir); err != nil {
		return "", err
	} else if installed {
		return rel.Docsvc, nil
	}
	if p := filepath.Join(dataDir, "bin", "docsvc"); isExec(p) {
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), "docsvc"); isExec(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("docsvc"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no docsvc binary in %s, beside tetherctl or on PATH: run 'tetherctl dev --data-dir %s' once (it builds it), or install docsvc", filepath.Join(dataDir, "bin"), dataDir)
}
