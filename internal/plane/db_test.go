package plane_test

import (
	"time"

	"github.com/tetherhq/tether/internal/testtime"
)

// clock is the settable test clock every plane test shares.
type clock = testtime.Clock

func newClock() *clock { return testtime.NewClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)) }
