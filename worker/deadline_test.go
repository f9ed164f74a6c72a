package worker

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

type ctxKey struct{}

// TestLazyDeadline: a deadlineCtx behaves as context.WithDeadline does,
// whether or not anything armed its timer.
func TestLazyDeadline(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")

	t.Run("unarmed, before and after the deadline", func(t *testing.T) {
		dl := time.Now().Add(300 * time.Millisecond)
		c := withLazyDeadline(parent, dl)
		if got, ok := c.Deadline(); !ok || !got.Equal(dl) {
			t.Errorf("Deadline = %v, %v; want %v, true", got, ok, dl)
		}
		if err := c.Err(); err != nil {
			t.Errorf("Err before the deadline = %v", err)
		}
		if c.Value(ctxKey{}) != "v" {
			t.Error("Value does not reach the parent")
		}
		time.Sleep(time.Until(dl) + time.Millisecond)
		if err := c.Err(); err != context.DeadlineExceeded {
			t.Errorf("Err after the deadline = %v; want DeadlineExceeded", err)
		}
		if err := context.Cause(c); err != context.DeadlineExceeded {
			t.Errorf("Cause after the deadline = %v; want DeadlineExceeded", err)
		}
		select {
		case <-c.Done():
		default:
			t.Error("Done not closed after the deadline")
		}
		c.release()
		if err := c.Err(); err != context.DeadlineExceeded {
			t.Errorf("Err after the deadline and release = %v; want DeadlineExceeded", err)
		}
	})

	t.Run("armed: Done closes at the deadline", func(t *testing.T) {
		c := withLazyDeadline(parent, time.Now().Add(20*time.Millisecond))
		defer c.release()
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed 5 s after a 20 ms deadline")
		}
		if err := c.Err(); err != context.DeadlineExceeded {
			t.Errorf("Err = %v; want DeadlineExceeded", err)
		}
		if c.Value(ctxKey{}) != "v" {
			t.Error("Value does not reach the parent once armed")
		}
	})

	t.Run("released before the deadline", func(t *testing.T) {
		for _, armFirst := range []bool{false, true} {
			c := withLazyDeadline(parent, time.Now().Add(time.Hour))
			if armFirst {
				_ = c.Done()
			}
			c.release()
			if err := c.Err(); err != context.Canceled {
				t.Errorf("armed %v: Err = %v; want Canceled", armFirst, err)
			}
			select {
			case <-c.Done():
			default:
				t.Errorf("armed %v: Done not closed after release", armFirst)
			}
			if err := context.Cause(c); err != context.Canceled {
				t.Errorf("armed %v: Cause = %v; want Canceled", armFirst, err)
			}
		}
	})

	t.Run("parent cancelled", func(t *testing.T) {
		p, cancel := context.WithCancelCause(parent)
		c := withLazyDeadline(p, time.Now().Add(time.Hour))
		defer c.release()
		stop := errors.New("worker stopping")
		cancel(stop)
		if err := c.Err(); err != context.Canceled {
			t.Errorf("Err = %v; want Canceled", err)
		}
		<-c.Done()
		if err := context.Cause(c); err != stop {
			t.Errorf("Cause = %v; want the parent's cause", err)
		}
	})

	t.Run("Err keeps its first answer", func(t *testing.T) {
		p, cancel := context.WithCancel(parent)
		c := withLazyDeadline(p, time.Now().Add(time.Millisecond))
		time.Sleep(5 * time.Millisecond)
		if err := c.Err(); err != context.DeadlineExceeded {
			t.Fatalf("Err after the deadline = %v; want DeadlineExceeded", err)
		}
		cancel() // the worker stopping, after the deadline passed
		if err := c.Err(); err != context.DeadlineExceeded {
			t.Errorf("Err once the parent was cancelled = %v; still want DeadlineExceeded", err)
		}
		<-c.Done()
		if err, cause := c.Err(), context.Cause(c); err != context.DeadlineExceeded || cause != context.DeadlineExceeded {
			t.Errorf("armed after: Err %v, Cause %v; want DeadlineExceeded for both", err, cause)
		}

		// Released before a parent deadline passes: Canceled, for good.
		pd, cancelPD := context.WithTimeout(parent, 20*time.Millisecond)
		defer cancelPD()
		c = withLazyDeadline(pd, time.Now().Add(time.Hour))
		c.release()
		time.Sleep(30 * time.Millisecond)
		if err := c.Err(); err != context.Canceled {
			t.Errorf("released, then the parent's deadline passed: Err = %v; want Canceled", err)
		}
	})

	t.Run("the parent's sooner deadline", func(t *testing.T) {
		soon := time.Now().Add(time.Minute)
		p, cancel := context.WithDeadline(parent, soon)
		defer cancel()
		c := withLazyDeadline(p, time.Now().Add(time.Hour))
		defer c.release()
		if got, _ := c.Deadline(); !got.Equal(soon) {
			t.Errorf("Deadline = %v; want the parent's sooner %v", got, soon)
		}
	})

	t.Run("derived contexts and AfterFunc", func(t *testing.T) {
		c := withLazyDeadline(parent, time.Now().Add(50*time.Millisecond))
		defer c.release()
		before := runtime.NumGoroutine()
		var children []context.Context
		for range 100 {
			child, cancel := context.WithCancel(c)
			defer cancel()
			children = append(children, child)
		}
		// Registered with the armed context, not watched by a goroutine
		// each.
		if n := runtime.NumGoroutine(); n > before+5 {
			t.Errorf("%d goroutines after deriving 100 contexts; had %d", n, before)
		}
		ran := make(chan struct{})
		context.AfterFunc(c, func() { close(ran) })
		for _, child := range children {
			<-child.Done()
			if err := child.Err(); err != context.DeadlineExceeded {
				t.Fatalf("child Err = %v; want DeadlineExceeded", err)
			}
		}
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatal("AfterFunc did not run after the deadline")
		}
	})

	t.Run("concurrent use", func(t *testing.T) {
		for range 200 {
			c := withLazyDeadline(parent, time.Now().Add(time.Millisecond))
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Go(func() {
					switch i {
					case 0:
						<-c.Done()
					case 1:
						_ = c.Err()
						_ = c.Value(ctxKey{})
					case 2:
						c.release()
					case 3:
						_ = context.Cause(c)
					}
				})
			}
			wg.Wait()
			if c.Err() == nil {
				t.Fatal("Err nil after release")
			}
			<-c.Done()
		}
	})
}

// BenchmarkLazyDeadline: a request's deadline context that no one waits
// on, lazily and as context.WithDeadline makes it, under a cancellable
// root as the worker's.
func BenchmarkLazyDeadline(b *testing.B) {
	root, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("lazy", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c := withLazyDeadline(root, time.Now().Add(time.Second))
				_ = c.Err()
				c.release()
			}
		})
	})
	b.Run("WithDeadline", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c, cancel := context.WithDeadline(root, time.Now().Add(time.Second))
				_ = c.Err()
				cancel()
			}
		})
	})
}
