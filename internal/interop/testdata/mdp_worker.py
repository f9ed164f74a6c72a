#!/usr/bin/python3
"""A plain MDP/0.1 worker (ZeroMQ RFC 7), for interoperability tests.

Written from the specification with nothing but pyzmq, so it behaves like
any third-party Majordomo worker and shares no code with domo.

    mdp_worker.py --broker tcp://127.0.0.1:5555 --service echo \
        [--heartbeat-ms 250] [--mode echo|upper] [--max-requests N] \
        [--delay-ms 0] [--reconnect-ms MS] [--verbose]

Behaviour:
  * A DEALER socket connects to the broker and sends
    READY [b"", b"MDPW01", b"\\x01", service]; the line "ready" is then
    printed on stdout and flushed (once per READY, so a reconnect prints it
    again and a test can wait for it).
  * Each REQUEST [b"", b"MDPW01", b"\\x02", address, b"", body...] is
    answered with REPLY [b"", b"MDPW01", b"\\x03", address, b"", body...]:
    the body unchanged (--mode echo) or each frame upper-cased (--mode
    upper). --delay-ms holds each reply back that long while the worker
    keeps heartbeating.
  * A HEARTBEAT [b"", b"MDPW01", b"\\x04"] is sent whenever the worker has
    sent nothing for one heartbeat interval (RFC 7: any command counts as
    a heartbeat, and peers should not send heartbeats beside other
    commands).
  * On DISCONNECT from the broker, or when nothing valid has arrived from
    the broker for 3 heartbeat intervals, the socket is closed and a new
    one connects and sends READY again after --reconnect-ms (default: one
    heartbeat interval).
  * Malformed messages from the broker are dropped (and reported on stderr
    with --verbose); they do not count as heartbeats.
  * On SIGTERM or SIGINT, or after --max-requests replies, the worker sends
    DISCONNECT [b"", b"MDPW01", b"\\x05"], closes its socket and exits 0.

Exit codes: 0 clean stop, 1 ZeroMQ error, 64 bad arguments.
"""

import argparse
import signal
import sys
import time

import zmq

MDPW = b"MDPW01"
READY = b"\x01"
REQUEST = b"\x02"
REPLY = b"\x03"
HEARTBEAT = b"\x04"
DISCONNECT = b"\x05"

LIVENESS = 3  # missed heartbeat intervals before the broker counts as lost

EXIT_OK = 0
EXIT_ZMQ = 1
EXIT_USAGE = 64


class UsageParser(argparse.ArgumentParser):
    """An ArgumentParser that exits 64 (EX_USAGE) on bad arguments."""

    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        sys.exit(EXIT_USAGE)


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0: %r" % text)
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0: %r" % text)
    return value


def parse_args(argv):
    p = UsageParser(description="A plain MDP/0.1 (RFC 7) worker.")
    p.add_argument("--broker", required=True, help="broker endpoint, e.g. tcp://127.0.0.1:5555")
    p.add_argument("--service", required=True, help="service name to offer")
    p.add_argument("--heartbeat-ms", type=positive_int, default=250, help="heartbeat interval (default 250)")
    p.add_argument("--mode", choices=("echo", "upper"), default="echo", help="reply with the body unchanged or upper-cased")
    p.add_argument("--max-requests", type=non_negative_int, default=0, help="exit after this many replies (0: never)")
    p.add_argument("--delay-ms", type=non_negative_int, default=0, help="hold each reply back this long (default 0)")
    p.add_argument("--reconnect-ms", type=non_negative_int, default=None, help="pause before reconnecting (default: heartbeat interval)")
    p.add_argument("--verbose", action="store_true", help="log protocol events on stderr")
    args = p.parse_args(argv)
    if not args.service:
        p.error("--service must not be empty")
    if args.reconnect_ms is None:
        args.reconnect_ms = args.heartbeat_ms
    return args


def now():
    return time.monotonic()


class Worker:
    def __init__(self, args):
        self.args = args
        self.service = args.service.encode("utf-8")
        self.interval = args.heartbeat_ms / 1000.0
        self.ctx = zmq.Context()
        self.sock = None
        self.stopping = False
        self.replies = 0
        self.pending = []  # (due time, reply frames), in arrival order
        self.last_recv = 0.0
        self.last_send = 0.0

    def log(self, msg):
        if self.args.verbose:
            sys.stderr.write("mdp_worker[%s]: %s\n" % (self.args.service, msg))
            sys.stderr.flush()

    def stop(self, signum=None, frame=None):
        self.stopping = True

    def send(self, frames):
        # A DEALER with no connected peer would block; never wait on send.
        try:
            self.sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=True)
        except zmq.Again:
            self.log("send would block; dropped %r" % frames[2:3])
            return
        self.last_send = now()

    def connect(self):
        self.close()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(self.args.broker)
        self.pending = []
        # connect() creates the pipe at once, so READY is queued (not
        # blocked on) until the connection is up.
        self.send([b"", MDPW, READY, self.service])
        t = now()
        self.last_send = t
        self.last_recv = t
        self.log("READY sent to %s" % self.args.broker)
        sys.stdout.write("ready\n")
        sys.stdout.flush()

    def close(self):
        if self.sock is not None:
            self.sock.close(linger=0)
            self.sock = None

    def disconnect(self):
        if self.sock is not None:
            try:
                self.sock.send_multipart([b"", MDPW, DISCONNECT], flags=zmq.NOBLOCK)
                self.log("DISCONNECT sent")
            except zmq.ZMQError:
                pass
            # Give libzmq a moment to put DISCONNECT on the wire before the
            # socket goes; linger stays bounded.
            self.sock.setsockopt(zmq.LINGER, 200)
            self.sock.close()
            self.sock = None

    def reconnect(self, why):
        self.log("reconnecting: %s" % why)
        self.close()
        deadline = now() + self.args.reconnect_ms / 1000.0
        while not self.stopping and now() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - now())))
        if not self.stopping:
            self.connect()

    def make_reply(self, address, body):
        if self.args.mode == "upper":
            body = [frame.upper() for frame in body]
        return [b"", MDPW, REPLY, address, b""] + body

    def handle(self, frames):
        """Handles one message from the broker; returns False to reconnect."""
        if len(frames) < 3 or frames[0] != b"" or frames[1] != MDPW:
            self.log("dropped malformed message: %r" % (frames[:3],))
            return True
        command = frames[2]
        if command == REQUEST:
            # RFC 7: exactly one address frame, then an empty delimiter,
            # then a body of at least one frame.
            if len(frames) < 6 or frames[4] != b"":
                self.log("dropped malformed REQUEST: %d frames" % len(frames))
                return True
            self.last_recv = now()
            reply = self.make_reply(frames[3], list(frames[5:]))
            self.pending.append((now() + self.args.delay_ms / 1000.0, reply))
            return True
        if command == HEARTBEAT:
            self.last_recv = now()
            return True
        if command == DISCONNECT:
            self.log("DISCONNECT from broker")
            return False
        self.log("dropped unexpected command %r" % command)
        return True

    def flush_replies(self):
        t = now()
        while self.pending and self.pending[0][0] <= t:
            _, reply = self.pending.pop(0)
            self.send(reply)
            self.replies += 1
            if self.args.max_requests and self.replies >= self.args.max_requests:
                self.log("served %d requests; stopping" % self.replies)
                self.stopping = True
                return

    def run(self):
        self.connect()
        # Wake up often enough to notice a signal promptly.
        tick = min(self.interval, 0.1)
        while not self.stopping:
            t = now()
            wait = tick
            if self.pending:
                wait = max(0.0, min(wait, self.pending[0][0] - t))
            wait = max(0.0, min(wait, self.last_send + self.interval - t))
            if self.sock.poll(int(wait * 1000), zmq.POLLIN):
                reconnect = False
                # Drain everything that is waiting before polling again.
                while True:
                    try:
                        frames = self.sock.recv_multipart(flags=zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if not self.handle(frames):
                        reconnect = True
                        break
                if reconnect:
                    self.reconnect("broker sent DISCONNECT")
                    continue
            self.flush_replies()
            if self.stopping:
                break
            t = now()
            if t - self.last_recv > LIVENESS * self.interval:
                self.reconnect("broker silent for %d heartbeat intervals" % LIVENESS)
                continue
            if t - self.last_send >= self.interval:
                self.send([b"", MDPW, HEARTBEAT])
        self.disconnect()
        self.ctx.term()


def main(argv):
    args = parse_args(argv)
    worker = Worker(args)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    try:
        worker.run()
    except zmq.ZMQError as e:
        sys.stderr.write("mdp_worker: %s\n" % e)
        worker.close()
        worker.ctx.destroy(linger=0)
        return EXIT_ZMQ
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
