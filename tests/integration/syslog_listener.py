#!/usr/bin/python3
"""Minimal syslog receiver for the tests: binds the AF_UNIX datagram socket given (normally
/dev/log, when no syslog daemon runs) and appends each record to a file. Stops on SIGTERM."""
import os, signal, socket, sys

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
def stop(*_):
    try:
        os.unlink(path)
    finally:
        os._exit(0)
signal.signal(signal.SIGTERM, stop)
with open(out, "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
