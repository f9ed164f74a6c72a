package zmtp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// listen opens a non-blocking listening socket for endpoint.
func listen(endpoint string) (*listener, error) {
	switch {
	case strings.HasPrefix(endpoint, "tcp://"):
		return listenTCP(endpoint)
	case strings.HasPrefix(endpoint, "ipc://"):
		return listenIPC(endpoint)
	}
	return nil, fmt.Errorf("zmtp: bind %s: only tcp:// and ipc:// endpoints", endpoint)
}

// lookupTimeout bounds a host name's lookup.
const lookupTimeout = time.Second

// ParseTCP parses a tcp:// endpoint as libzmq binds it: host "*" is every
// IPv4 interface, port "*" (or "!") any free port; a host name must resolve.
func ParseTCP(endpoint string) (netip.AddrPort, error) {
	hostport := strings.TrimPrefix(endpoint, "tcp://")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("zmtp: endpoint %s: %w", endpoint, err)
	}
	var p uint64
	if port != "*" && port != "!" {
		if p, err = strconv.ParseUint(port, 10, 16); err != nil {
			return netip.AddrPort{}, fmt.Errorf("zmtp: endpoint %s: bad port %q", endpoint, port)
		}
	}
	var addr netip.Addr
	switch host {
	case "*", "":
		addr = netip.IPv4Unspecified()
	default:
		if addr, err = netip.ParseAddr(host); err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
			ips, lerr := net.DefaultResolver.LookupIP(ctx, "ip", host)
			cancel()
			if lerr != nil || len(ips) == 0 {
				return netip.AddrPort{}, fmt.Errorf("zmtp: endpoint %s: %q is neither an address nor a host name that resolves", endpoint, host)
			}
			// An IPv4 address if there is one, as libzmq (ZMQ_IPV6 off by
			// default) would take.
			ip := ips[0]
			if i := slices.IndexFunc(ips, func(ip net.IP) bool { return ip.To4() != nil }); i >= 0 {
				ip = ips[i]
			}
			addr, _ = netip.AddrFromSlice(ip)
		}
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(p)), nil
}

func listenTCP(endpoint string) (*listener, error) {
	ap, err := ParseTCP(endpoint)
	if err != nil {
		return nil, err
	}
	family := syscall.AF_INET
	var sa syscall.Sockaddr = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	if ap.Addr().Is6() {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("zmtp: bind %s: socket: %w", endpoint, err)
	}
	// As libzmq: a restarted broker binds its port again at once.
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("zmtp: bind %s: %w", endpoint, err)
	}
	if err := syscall.Listen(fd, 1024); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("zmtp: listen %s: %w", endpoint, err)
	}
	bound, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("zmtp: bind %s: %w", endpoint, err)
	}
	var got netip.AddrPort
	switch sa := bound.(type) {
	case *syscall.SockaddrInet4:
		got = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *syscall.SockaddrInet6:
		got = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return &listener{fd: fd, endpoint: "tcp://" + got.String()}, nil
}

func listenIPC(endpoint string) (*listener, error) {
	path := strings.TrimPrefix(endpoint, "ipc://")
	if path == "" || path == "*" {
		return nil, fmt.Errorf("zmtp: bind %s: want a file path", endpoint)
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("zmtp: bind %s: socket: %w", endpoint, err)
	}
	// As libzmq: a file left by a process that died is replaced.
	_ = syscall.Unlink(path)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("zmtp: bind %s: %w", endpoint, err)
	}
	if err := syscall.Listen(fd, 1024); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("zmtp: listen %s: %w", endpoint, err)
	}
	return &listener{fd: fd, endpoint: endpoint, path: path}, nil
}
