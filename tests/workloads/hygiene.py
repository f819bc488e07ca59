"""asyncio service that never closes its connections, for asyncprobe's
hygiene findings; or the same work done properly.

Usage: python hygiene.py dirty|clean SECONDS
  dirty  opens a TCP connection to itself 25 times a second and closes
         none (both ends stay open)
  clean  the same, every connection closed
Says "ready" at the start; exits after SECONDS.
"""
import asyncio
import socket
import sys


def leaky_connect(srv, keep):
    keep.append(socket.create_connection(srv.getsockname()))
    keep.append(srv.accept()[0])


def tidy_connect(srv):
    with socket.create_connection(srv.getsockname()):
        srv.accept()[0].close()


async def main(mode, seconds):
    loop = asyncio.get_running_loop()
    srv = socket.create_server(("127.0.0.1", 0), backlog=1024)
    keep = []
    print("ready", flush=True)
    end = loop.time() + seconds
    while loop.time() < end:
        if mode == "dirty":
            leaky_connect(srv, keep)
        else:
            tidy_connect(srv)
        await asyncio.sleep(0.04)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
