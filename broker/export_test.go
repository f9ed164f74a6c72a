package broker

import "time"

// BeatClockForTest exposes the broker's tick schedule to the external tests.
type BeatClockForTest struct{ c beatClock }

func NewBeatClockForTest(origin time.Time, interval time.Duration) *BeatClockForTest {
	return &BeatClockForTest{newBeatClock(origin, interval)}
}

// Advance returns whether a sweep is due at now, the next tick and the next
// sweep.
func (b *BeatClockForTest) Advance(now time.Time) (sweep bool, next, nextSweep time.Time) {
	sweep = b.c.advance(now)
	return sweep, b.c.next, b.c.sweep
}
