#!/usr/bin/python3
"""A plain MDP/0.1 client (ZeroMQ RFC 7, with RFC 8 MMI), for interoperability tests.

Written from the specification with nothing but pyzmq, so it behaves like
any third-party Majordomo client and shares no code with domo.

    mdp_client.py --broker tcp://127.0.0.1:5555 --service echo \
        [--timeout-ms 2500] [--count N] FRAME...
    mdp_client.py --broker tcp://127.0.0.1:5555 --service echo --mmi

Behaviour:
  * A DEALER socket (so the empty frame 0 is written explicitly, as RFC 7
    requires of DEALER clients) sends REQUEST
    [b"", b"MDPC01", service, FRAME...] N times, one after another, each
    after the previous reply. Each FRAME argument is one body frame, UTF-8
    encoded.
  * Each REPLY must be [b"", b"MDPC01", service, body...] with at least one
    body frame. Its body is printed on stdout as a JSON array of strings,
    one line per reply, flushed. A frame that is not valid UTF-8 is printed
    with Python's backslashreplace (b"\\xd1" becomes the four characters
    \\xd1), so every line is valid JSON.
  * --mmi asks the broker's RFC 8 service "mmi.service" whether the service
    exists: the request body is the service name, and the reply's first
    frame (e.g. "200" or "404") is printed alone on a line.
  * No reply within --timeout-ms: a message on stderr and exit 2. The client
    does not retry.

Exit codes: 0 every reply received and well formed, 1 ZeroMQ error,
2 timeout, 3 malformed reply, 64 bad arguments.
"""

import argparse
import json
import signal
import sys
import time

import zmq

MDPC = b"MDPC01"
MMI_SERVICE = b"mmi.service"

EXIT_OK = 0
EXIT_ZMQ = 1
EXIT_TIMEOUT = 2
EXIT_MALFORMED = 3
EXIT_USAGE = 64
EXIT_INTERRUPTED = 130


class UsageParser(argparse.ArgumentParser):
    """An ArgumentParser that exits 64 (EX_USAGE) on bad arguments, so that
    exit 2 always means a timeout."""

    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        sys.exit(EXIT_USAGE)


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0: %r" % text)
    return value


def parse_args(argv):
    p = UsageParser(description="A plain MDP/0.1 (RFC 7) client.")
    p.add_argument("--broker", required=True, help="broker endpoint, e.g. tcp://127.0.0.1:5555")
    p.add_argument("--service", required=True, help="service to call (or to look up with --mmi)")
    p.add_argument("--timeout-ms", type=positive_int, default=2500, help="wait this long for each reply (default 2500)")
    p.add_argument("--count", type=positive_int, default=1, help="send the request this many times, one after another (default 1)")
    p.add_argument("--mmi", action="store_true", help='ask "mmi.service" whether --service exists; print the code')
    p.add_argument("frames", nargs="*", metavar="FRAME", help="request body frames")
    args = p.parse_args(argv)
    if not args.service:
        p.error("--service must not be empty")
    if args.mmi and args.frames:
        p.error("--mmi takes no FRAME arguments")
    if not args.mmi and not args.frames:
        p.error("at least one FRAME is required (RFC 7: a request has a body)")
    return args


class Malformed(Exception):
    pass


class Timeout(Exception):
    pass


def text(frame):
    try:
        return frame.decode("utf-8")
    except UnicodeDecodeError:
        return frame.decode("utf-8", errors="backslashreplace")


def call(sock, service, body, timeout):
    """Sends one REQUEST and returns the reply body frames."""
    sock.send_multipart([b"", MDPC, service] + body)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sock.poll(max(1, int(left * 1000)), zmq.POLLIN):
            raise Timeout()
        try:
            frames = sock.recv_multipart(flags=zmq.NOBLOCK)
        except zmq.Again:
            continue
        if len(frames) < 4:
            raise Malformed("reply has %d frames, want at least 4: %r" % (len(frames), frames))
        if frames[0] != b"":
            raise Malformed("reply frame 0 is %r, want empty" % frames[0])
        if frames[1] != MDPC:
            raise Malformed("reply header is %r, want %r" % (frames[1], MDPC))
        if frames[2] != service:
            raise Malformed("reply service is %r, want %r" % (frames[2], service))
        return frames[3:]


def main(argv):
    args = parse_args(argv)
    # Terminate like an interrupt, so the socket is closed on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    if args.mmi:
        service = MMI_SERVICE
        body = [args.service.encode("utf-8")]
    else:
        service = args.service.encode("utf-8")
        body = [f.encode("utf-8") for f in args.frames]
    timeout = args.timeout_ms / 1000.0

    ctx = zmq.Context()
    sock = None
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(args.broker)
        for i in range(args.count):
            try:
                reply = call(sock, service, body, timeout)
            except Timeout:
                sys.stderr.write("mdp_client: request %d of %d to %r: no reply within %d ms\n"
                                 % (i + 1, args.count, text(service), args.timeout_ms))
                return EXIT_TIMEOUT
            except Malformed as e:
                sys.stderr.write("mdp_client: request %d of %d to %r: malformed reply: %s\n"
                                 % (i + 1, args.count, text(service), e))
                return EXIT_MALFORMED
            if args.mmi:
                sys.stdout.write(text(reply[0]) + "\n")
            else:
                sys.stdout.write(json.dumps([text(f) for f in reply]) + "\n")
            sys.stdout.flush()
        return EXIT_OK
    except zmq.ZMQError as e:
        sys.stderr.write("mdp_client: %s\n" % e)
        return EXIT_ZMQ
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        if sock is not None:
            sock.close(linger=0)
        ctx.term()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
