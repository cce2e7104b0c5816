//go:build !unix

package extract

// newLinearMemory allocates the whole cap from the Go heap up front: the
// same bound as on Unix, without returning the pages early.
func newLinearMemory(size uint64) *linearMemory {
	m := &linearMemory{buf: make([]byte, size), free: func([]byte) {}}
	m.refs.Store(1)
	return m
}

// privateDir cannot check ownership here; the manifest still guards
// against a damaged cache.
func privateDir(string) error { return nil }
