package extract

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// PDFium's linear memory is where a hostile PDF makes the process grow:
// PDFium keeps layout data for every glyph of a page, so a 4.6 MB file of
// 4 million characters asks for gigabytes. wazero's own linear memory is a
// Go slice grown by append, which copies it at every step and leaves the
// old copies to the garbage collector: a 1 GiB memory cost the process
// 3.2 GB resident, kept after the document had failed.
//
// pdfMemories replaces it. Each instance's memory is reserved once at the
// document's cap (Limits.MaxMemoryBytes), so growing never copies; growth
// past the cap is refused and remembered, so the document fails with the
// memory limit named instead of a generic PDFium error; and on Unix the
// reservation is an anonymous mapping that is unmapped when the document
// is done, returning its pages to the system at once instead of whenever
// the Go runtime's scavenger gets to them.
type pdfMemories struct {
	mu sync.Mutex // held by claim
	// limit is the cap for the next memory allocated, set by claim.
	limit atomic.Uint64
	// last is the memory allocated most recently, for claim.
	last atomic.Pointer[linearMemory]
}

// Allocate implements experimental.MemoryAllocator. wazero calls it while
// instantiating PDFium, which pdfiumEngine.instantiate does inside claim.
func (p *pdfMemories) Allocate(_, max uint64) experimental.LinearMemory {
	m := newLinearMemory(min(max, p.limit.Load()))
	p.last.Store(m)
	return m
}

// claim runs get, which must instantiate a fresh PDFium, and returns the
// memory that instantiation allocated, capped at limit bytes. A nil memory
// means get returned an instance made earlier, whose cap is not this
// document's: the caller must not use it.
func (p *pdfMemories) claim(limit uint64, get func() error) (*linearMemory, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limit.Store(limit)
	p.last.Store(nil)
	err := func() (err error) {
		// wazero panics when the memory cannot hold the module's initial
		// size: a cap below what PDFium needs to start.
		defer func() {
			if r := recover(); r != nil {
				err = errors.New("extract: pdf: pdfium failed to instantiate")
			}
		}()
		return get()
	}()
	m := p.last.Swap(nil)
	if m != nil {
		// One reference for wazero (Free), one for the caller (release).
		m.refs.Add(1)
	}
	return m, err
}

// linearMemory is one instance's memory: a reservation of reserved bytes of
// which the first len are in use.
type linearMemory struct {
	buf     []byte // the reservation; nil once released or if it failed
	refused atomic.Bool
	// refs counts the holders that must let go before the reservation is
	// returned: wazero (until it calls Free on closing the module) and
	// withPDFium (until the last call into the instance has returned).
	// Under wazero's own checks (newPDFEngine's fallback) a module whose
	// ctx ends is closed while its call may still be running, so neither
	// may unmap it alone.
	refs atomic.Int32
	// freed is set by wazero's one release (Free), which may come from
	// a closed module or from withPDFium after a failed instantiation.
	freed atomic.Bool
	free  func([]byte)
	// reserveErr is why the reservation failed, if it did.
	reserveErr error
}

// Reallocate implements experimental.LinearMemory.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		m.refused.Store(true)
		return nil
	}
	return m.buf[:size:size]
}

// Free implements experimental.LinearMemory: wazero's reference, let go
// once however many times it is called.
func (m *linearMemory) Free() {
	if m.freed.CompareAndSwap(false, true) {
		m.release()
	}
}

func (m *linearMemory) release() {
	if m.refs.Add(-1) == 0 && m.buf != nil {
		m.free(m.buf)
		m.buf = nil
	}
}

// refusedGrowth reports whether PDFium asked for more than the cap.
func (m *linearMemory) refusedGrowth() bool { return m.refused.Load() }
