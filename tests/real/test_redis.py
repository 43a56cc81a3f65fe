"""redis 7.0 (Debian) with an append-only file: appendfsync always and everysec, driven by redis-cli.

scenarios/redis_session.py starts redis-server (unix socket only, RDB off,
AOF on), waits for its READY=1 on NOTIFY_SOCKET, runs `redis-cli PING`,
three `SET`s and `SHUTDOWN`.

Ground truth
------------

`strace -f -y` of redis-server answering `SET k v` with appendfsync always (W is the work
directory):

    read(8<socket:[...]>, "*3\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$1\\r\\nv\\r\\n", 16384) = 27
    write(7<W/appendonlydir/appendonly.aof.1.incr.aof>, "*2\\r\\n$6\\r\\nSELECT...SET...", 50) = 50
    fdatasync(7<W/appendonlydir/appendonly.aof.1.incr.aof>) = 0
    write(8<socket:[...]>, "+OK\\r\\n", 5) = 5

src/server.c beforeSleep(): "Write the AOF buffer on disk, must be done
before handleClientsWithPendingWritesUsingThreads, in case of
appendfsync=always"; src/aof.c flushAppendOnlyFile(): with
AOF_FSYNC_ALWAYS it calls redis_fsync() (fdatasync on Linux) at once and
exits on failure ("we have a contract with the user that on acknowledged or
observed writes are is synced on disk"); with AOF_FSYNC_EVERYSEC it hands the
fsync to a background thread at most once a second. redis.conf: "always:
fsync after every write to the append only log. Slow, Safest. everysec:
fsync only one time every second." So FS106 on the AOF is FALSE with always
and TRUE with everysec: a `+OK` goes out while the write it acknowledges is
not durable (up to a second of acknowledged writes lost on power failure).

At start-up (7.0's multi-part AOF):

    mkdir("appendonlydir", 0755) = 0
    openat(AT_FDCWD, "temp-rewriteaof-N.aof", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 7
    write(7<W/temp-rewriteaof-N.aof>, "REDIS0010...", 89) = 89
    fsync(7<W/temp-rewriteaof-N.aof>) = 0
    rename("temp-rewriteaof-N.aof", "appendonlydir/appendonly.aof.1.base.rdb") = 0
    openat(AT_FDCWD, "appendonlydir/appendonly.aof.1.incr.aof", O_WRONLY|O_CREAT|O_APPEND, 0644) = 7
    openat(AT_FDCWD, "appendonlydir/temp-appendonly.aof.manifest", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 8
    write(8<...manifest>, "file appendonly.aof.1.base.rdb seq 1 type b\\nfile appendonly."..., 88) = 88
    fdatasync(8<...manifest>) = 0
    rename("appendonlydir/temp-appendonly.aof.manifest", "appendonlydir/appendonly.aof.manifest") = 0
    openat(AT_FDCWD, "appendonlydir", O_RDONLY) = 9
    fdatasync(9<W/appendonlydir>) = 0

Every file in appendonlydir is synced and so is appendonlydir ("Also sync
the AOF directory as new AOF files may be added in the directory",
aof.c), but appendonlydir itself was made by dirCreateIfMissing(), a bare
mkdir() (src/util.c), and W is never synced: the whole AOF directory can
vanish in a crash. FS103 on appendonlydir is TRUE. The base file's rename
also leaves W's entry for the temp name unsynced: FS102 on W for it is
NOISE (at worst a stale temp file comes back; appendonlydir, which holds
the new name, is synced).

NOISE: redis.log (the log), redis.pid (written at start, removed at exit).
FALSE: FS104 on redis.sock (a unix socket's name), any FS106 sent by redis-cli (a request
acknowledges nothing the server wrote), FS101/FS105 on appendonlydir/*
(the temp base file is fsynced before its rename, the manifest fdatasync'ed,
and the AOF fdatasync'ed at SHUTDOWN: "Calling fsync() on the AOF file").
"""

from __future__ import annotations

from pathlib import Path

from .realcase import (FALSE, NOISE, SCENARIOS, TRUE, Case, Truth, parametrize,
                      stop_pidfile)


def stop_server(work: Path) -> None:
    stop_pidfile(work / "redis.pid", "/usr/bin/redis-server")


COMMON = [
    Truth("FS106", "*", FALSE, "a client's request acknowledges nothing the server wrote", by="redis-cli"),
    Truth("FS103", "appendonlydir", TRUE, "made by a bare mkdir(); its parent is never synced", by="redis-server"),
    Truth("FS102", "appendonlydir/*.base.rdb", NOISE, "only the source directory's temp name is unsynced",
          expect="info"),
    Truth("FS101", "appendonlydir/*", FALSE, "the temp base is fsynced and the manifest fdatasync'ed before renames"),
    Truth("FS105", "appendonlydir/*", FALSE, "SHUTDOWN fdatasyncs the AOF"),
    Truth("FS10[46]", "redis.pid", NOISE, "the pid file"),
    Truth("FS10[56]", "redis.log", NOISE, "the log; the READY=1 notification acknowledges no line of it"),
    Truth("FS104", "redis.sock", FALSE, "a unix socket's name is not a file"),
]


def session(appendfsync: str):
    # -B: the harness writes no byte-code of its own.
    return lambda work: ["python3", "-I", "-B", str(SCENARIOS / "redis_session.py"), str(work), appendfsync]


CASES = [
    Case("redis-aof-always", "redis-server, AOF, appendfsync always; redis-cli", ("redis-server", "redis-cli", "python3"),
         session("always"), [
             Truth("FS106", "appendonlydir/*", FALSE, "each AOF write is fdatasync'ed before the reply"),
             *COMMON,
         ], teardown=stop_server),
    Case("redis-aof-everysec", "redis-server, AOF, appendfsync everysec; redis-cli",
         ("redis-server", "redis-cli", "python3"), session("everysec"), [
             Truth("FS106", "appendonlydir/*.incr.aof", TRUE, "+OK is sent before the once-a-second fsync",
                   by="redis-server"),
             *COMMON,
         ], teardown=stop_server),
]


@parametrize(CASES)
def test_ground_truth(traced, case, check):
    check.run(traced(case))
