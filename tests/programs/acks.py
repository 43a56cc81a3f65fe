"""Servers that acknowledge, for tests/test_acknowledgements.py (FS106):
python acks.py MODE [FAMILY] (in the directory to write).

Every mode first fsyncs its files once (the checkpoint before: they are meant
to be durable), so FS106's intent is there from the start.

wal FAMILY:      a write-ahead-log server (FAMILY inet or unix) and its client, a
                 forked process: per request the server writes a table page and a
                 log record, fdatasyncs the log, replies, then appends to its access
                 log; the client sends its next request after that. Correct: the
                 reply follows a barrier of its own, and the client's requests
                 acknowledge nothing of the server's.
everysec FAMILY: the same server replying before its fdatasync (Redis's
                 appendfsync everysec): the server acknowledges, the client never.
netlink:         data written, then a netlink route request sent (as runuser sends
                 its PAM audit record), then the fsync: netlink is not the outside world.
groupcommit:     three backends share a log. A writes its record, B writes its own
                 and fdatasyncs (covering both), C writes one it leaves unsynced,
                 then A replies: A's data is durable, C's is C's.
attached:        for `fsaudit attach`: a netlink socket and a unix socket pair made
                 before "ready", then until killed: write a.dat, send on the netlink
                 socket, fsync a.dat; write b.dat, send on the unix socket, fsync b.dat;
                 "done" once a whole round followed a SIGUSR1.
"""

import os
import signal
import socket
import sys
import time

PAGE = b"p" * 8192
REQUESTS = 3


def durable_file(name: str, flags: int = 0) -> int:
    fd = os.open(name, os.O_RDWR | os.O_CREAT | flags, 0o644)
    os.write(fd, b"\0" * 512)
    os.fsync(fd)
    return fd


def listen(family: str) -> socket.socket:
    if family == "inet":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
    else:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(os.path.abspath("server.sock"))
    listener.listen(1)
    return listener


def client(listener: socket.socket, turn: int) -> None:
    """Sends each request once the server has written its access log for the last one
    (a token on a pipe, which is no send): while the server has fresh dirty data."""
    conn = socket.socket(listener.family, socket.SOCK_STREAM)
    conn.connect(listener.getsockname())
    for number in range(REQUESTS):
        conn.sendall(b"INSERT %d\n" % number)
        assert conn.recv(16) == b"OK\n"
        os.read(turn, 1)
    conn.close()


def serve(family: str, sync_before_reply: bool) -> None:
    table, wal = durable_file("table"), durable_file("wal", os.O_APPEND)
    access = durable_file("access.log", os.O_APPEND)
    listener = listen(family)
    turn, logged = os.pipe()
    child = os.fork()
    if child == 0:
        client(listener, turn)
        os._exit(0)
    conn, _ = listener.accept()
    for number in range(REQUESTS):
        request = conn.recv(64)
        os.pwrite(table, PAGE, 8192 * (number + 1))
        os.write(wal, b"record %d\n" % number)
        if sync_before_reply:
            os.fdatasync(wal)
        conn.sendall(b"OK\n")
        if not sync_before_reply:
            os.fdatasync(wal)
        os.write(access, request)
        os.write(logged, b"x")
    os.waitpid(child, 0)


# A netlink route request: struct nlmsghdr (length 20, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP,
# sequence 1, port 0) and struct rtgenmsg (AF_UNSPEC, padded).
GETLINK = b"\x14\0\0\0\x12\0\x01\x03\x01\0\0\0\0\0\0\0\0\0\0\0"


def netlink() -> None:
    data = durable_file("data")
    os.write(data, PAGE)
    route = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    route.sendto(GETLINK, (0, 0))
    os.fsync(data)


def groupcommit() -> None:
    wal = durable_file("wal", os.O_APPEND)
    reply, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    turns = [os.pipe() for _ in range(3)]     # A -> B, B -> C, C -> A

    def backend(name: str, wait, tell, sync: bool) -> None:
        os.read(wait, 1)
        os.write(wal, b"record of %s\n" % name.encode())
        if sync:
            os.fdatasync(wal)
        os.write(tell, b"x")
        os._exit(0)

    children = []
    for name, (wait, tell, sync) in {"B": (turns[0][0], turns[1][1], True),
                                     "C": (turns[1][0], turns[2][1], False)}.items():
        pid = os.fork()
        if pid == 0:
            backend(name, wait, tell, sync)
        children.append(pid)
    os.write(wal, b"record of A\n")
    os.write(turns[0][1], b"x")
    os.read(turns[2][0], 1)
    reply.sendall(b"COMMIT\n")
    assert peer.recv(16) == b"COMMIT\n"
    for pid in children:
        os.waitpid(pid, 0)


def attached() -> None:
    route = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    theirs.setblocking(False)
    a, b = durable_file("a.dat"), durable_file("b.dat")
    asked = []
    signal.signal(signal.SIGUSR1, lambda *_: asked.append(True))
    print("ready", flush=True)
    after = 0
    while True:
        os.write(a, PAGE)
        route.sendto(GETLINK, (0, 0))
        os.fsync(a)
        os.write(b, PAGE)
        ours.send(b"ok")
        os.fsync(b)
        for sock in (route, theirs):     # read the replies, or the buffers fill
            try:
                while sock.recv(65536, socket.MSG_DONTWAIT):
                    pass
            except BlockingIOError:
                pass
        after += bool(asked)
        if after == 2:
            print("done", flush=True)
        time.sleep(0.01)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode in ("wal", "everysec"):
        serve(sys.argv[2], sync_before_reply=mode == "wal")
    else:
        {"netlink": netlink, "groupcommit": groupcommit, "attached": attached}[mode]()
