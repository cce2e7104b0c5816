//go:build unix

package extract

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// newLinearMemory reserves size bytes of address space. The pages cost
// nothing until PDFium touches them (MAP_NORESERVE: no swap is set aside
// for the untouched rest) and go back to the system when unmapped.
func newLinearMemory(size uint64) *linearMemory {
	m := &linearMemory{free: func(b []byte) { _ = syscall.Munmap(b) }}
	m.refs.Store(1)
	if size == 0 {
		return m
	}
	buf, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		// Every Reallocate is refused; withPDFium reports reserveErr, a
		// problem of the machine (strict overcommit, say), not the PDF's.
		m.reserveErr = fmt.Errorf("reserve %d bytes: %w", size, err)
		return m
	}
	m.buf = buf
	return m
}

// privateDir refuses a cache directory that another user could write to:
// its files are code this process runs.
func privateDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !ok:
		return errors.New("its owner cannot be read")
	case int(st.Uid) != os.Getuid():
		return fmt.Errorf("it belongs to user %d, not this process's user %d", st.Uid, os.Getuid())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("others can write to it (mode %s); chmod go-w it", fi.Mode().Perm())
	}
	return nil
}
