package netnstest_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/domo-framework/domo/internal/netnstest"
)

func TestMain(m *testing.M) {
	netnstest.Main(m, map[string]netnstest.Role{
		// addrs prints each interface with its addresses, then waits.
		"addrs": func(ctx context.Context, args []string) error {
			ifs, err := net.Interfaces()
			if err != nil {
				return err
			}
			for _, ifi := range ifs {
				addrs, _ := ifi.Addrs()
				fmt.Printf("iface %s %v\n", ifi.Name, addrs)
			}
			fmt.Println("args", strings.Join(args, " "))
			<-ctx.Done()
			return nil
		},
		// udp-echo answers one UDP datagram on args[0], then waits.
		"udp-echo": func(ctx context.Context, args []string) error {
			c, err := net.ListenPacket("udp4", args[0])
			if err != nil {
				return err
			}
			defer c.Close()
			fmt.Println("listening")
			buf := make([]byte, 100)
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return err
			}
			if _, err := c.WriteTo(buf[:n], from); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		},
		// udp-ask sends "ping" to args[0] and prints the answer.
		"udp-ask": func(ctx context.Context, args []string) error {
			c, err := net.Dial("udp4", args[0])
			if err != nil {
				return err
			}
			defer c.Close()
			buf := make([]byte, 100)
			for range 50 {
				c.Write([]byte("ping"))
				c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if n, err := c.Read(buf); err == nil {
					fmt.Println("answer", string(buf[:n]))
					return nil
				}
			}
			return fmt.Errorf("no answer from %s", args[0])
		},
	})
}

func namespaces(t *testing.T) string {
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

func TestHostsAndCleanup(t *testing.T) {
	if testing.Short() {
		t.Skip("network namespaces: not in -short mode")
	}
	var names []string
	t.Run("net", func(t *testing.T) {
		n := netnstest.New(t, 2)
		for _, h := range n.Hosts {
			names = append(names, h.Name)
		}
		p := n.Hosts[0].Start(t, "addrs", "a", "b")
		line, err := p.WaitLine(10*time.Second, func(l string) bool { return strings.HasPrefix(l, "iface eth0 ") })
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(line, "10.213.0.2/24") {
			t.Errorf("host 0: %q; want address 10.213.0.2/24", line)
		}
		if _, err := p.WaitLine(5*time.Second, func(l string) bool { return l == "args a b" }); err != nil {
			t.Error(err)
		}
		out := p.Output()
		if strings.Count(out, "iface ") != 2 {
			t.Errorf("host 0 has interfaces other than lo and eth0:\n%s", out)
		}

		echo := n.Hosts[1].Start(t, "udp-echo", n.Hosts[1].IP+":7000")
		if _, err := echo.WaitLine(10*time.Second, func(l string) bool { return l == "listening" }); err != nil {
			t.Fatal(err)
		}
		ask := n.Hosts[0].Start(t, "udp-ask", n.Hosts[1].IP+":7000")
		if _, err := ask.WaitLine(10*time.Second, func(l string) bool { return l == "answer ping" }); err != nil {
			t.Fatal(err)
		}
		<-ask.Done()
	})
	if len(names) == 0 {
		t.Skip("no namespaces were made")
	}
	list := namespaces(t)
	for _, name := range names {
		if strings.Contains(list, name) {
			t.Errorf("namespace %s left after the test:\n%s", name, list)
		}
	}
}

func TestStopAndKill(t *testing.T) {
	if testing.Short() {
		t.Skip("network namespaces: not in -short mode")
	}
	n := netnstest.New(t, 1)
	p := n.Hosts[0].Start(t, "addrs")
	if _, err := p.WaitLine(10*time.Second, func(l string) bool { return strings.HasPrefix(l, "args") }); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if err := p.Err(); err != nil {
		t.Errorf("after Stop: %v; want exit status 0 (the role ends on SIGTERM)", err)
	}
	p.Stop() // idempotent
	q := n.Hosts[0].Start(t, "addrs")
	q.Kill()
	select {
	case <-q.Done():
	default:
		t.Error("Kill returned before the process ended")
	}
	if err := q.Err(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("after Kill: %v; want signal: killed", err)
	}
	if _, err := q.WaitLine(time.Second, func(string) bool { return false }); err == nil {
		t.Error("WaitLine on an ended process: no error")
	}
}
