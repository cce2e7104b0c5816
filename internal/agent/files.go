package agent

import (
	"github.com/tetherhq/tether/internal/atomicfile"
)

// writeFileAtomic is atomicfile.Write: a crash leaves the old file or the
// new one, never half.
var writeFileAtomic = atomicfile.Write

// writeJSONAtomic and readJSON are atomicfile's JSON pair.
var (
	writeJSONAtomic = atomicfile.WriteJSON
	readJSON        = atomicfile.ReadJSON
)
