"""redis-server with an append-only file, driven by redis-cli: PING, three SETs, SHUTDOWN.

Usage: redis_session.py WORKDIR APPENDFSYNC. The server listens on WORKDIR/redis.sock
only (port 0) and says it is ready the way systemd asks it to: READY=1 on the
datagram socket named by NOTIFY_SOCKET (`supervised systemd`).
"""

import os
import socket
import subprocess
import sys

work, appendfsync = sys.argv[1], sys.argv[2]
notify_path, server_socket = os.path.join(work, "notify.sock"), os.path.join(work, "redis.sock")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
server = subprocess.Popen(
    ["redis-server", "--port", "0", "--unixsocket", server_socket, "--dir", work, "--save", "",
     "--logfile", os.path.join(work, "redis.log"), "--pidfile", os.path.join(work, "redis.pid"),
     "--appendonly", "yes", "--appendfsync", appendfsync, "--supervised", "systemd"],
    env=dict(os.environ, NOTIFY_SOCKET=notify_path))
try:
    while b"READY=1" not in notify.recv(4096).split(b"\n"):
        pass
    cli = ["redis-cli", "-s", server_socket]
    subprocess.run(cli + ["PING"], check=True, stdout=subprocess.DEVNULL)
    for i in range(3):
        subprocess.run(cli + ["SET", f"key{i}", f"value{i}"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(cli + ["SHUTDOWN"], check=True)
    sys.exit(server.wait())
finally:
    if server.poll() is None:
        server.kill()
        server.wait()
