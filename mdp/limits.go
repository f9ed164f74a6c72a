package mdp

import "fmt"

// Limits bound what a peer may send. A message outside them is refused
// before it is parsed.
type Limits struct {
	MaxFrames      int // frames in one message, the routing identity included
	MaxFrameSize   int // bytes in one frame
	MaxMessageSize int // bytes in all frames of one message
}

// DefaultLimits returns the limits a broker, worker and client use unless
// configured otherwise: 64 frames, 4 MiB a frame and 4 MiB a message.
func DefaultLimits() Limits {
	return Limits{MaxFrames: 64, MaxFrameSize: 4 << 20, MaxMessageSize: 4 << 20}
}

// Check returns an error wrapping ErrTooManyFrames, ErrFrameTooLarge or
// ErrTooLarge if frames break a limit. A zero field means no limit.
func (l Limits) Check(frames [][]byte) error {
	if l.MaxFrames > 0 && len(frames) > l.MaxFrames {
		return fmt.Errorf("%w: %d frames, limit %d", ErrTooManyFrames, len(frames), l.MaxFrames)
	}
	total := 0
	for i, f := range frames {
		if l.MaxFrameSize > 0 && len(f) > l.MaxFrameSize {
			return fmt.Errorf("%w: frame %d has %d bytes, limit %d", ErrFrameTooLarge, i, len(f), l.MaxFrameSize)
		}
		total += len(f)
	}
	if l.MaxMessageSize > 0 && total > l.MaxMessageSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, total, l.MaxMessageSize)
	}
	return nil
}
