"""A small aiohttp service with three classic asyncio mistakes, for `make demo`.

  GET /report  crunches numbers in pure Python on the event loop (a stall)
  GET /nap     calls a helper that uses time.sleep (a blocking syscall)
  GET /rows    queries a slow "database" with a blocking socket (recvfrom)
  GET /        answers at once (healthy)

Usage: python3 demo_service.py PORT
"""
import socket
import sys
import threading
import time

from aiohttp import web


def crunch_numbers(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def sleepy_helper():
    time.sleep(0.25)


def slow_database():
    """A pretend database that answers every query 300 ms late."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            conn, _ = srv.accept()
            with conn:
                conn.recv(64)
                time.sleep(0.3)
                conn.sendall(b"row1,row2")

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()


DB = None


def fetch_rows():
    with socket.create_connection(DB) as sock:
        sock.sendall(b"SELECT *")
        return sock.recv(64).decode()


async def report(request):
    return web.json_response({"total": crunch_numbers(4_000_000)})


async def nap(request):
    sleepy_helper()
    return web.Response(text="rested\n")


async def rows(request):
    return web.Response(text=fetch_rows() + "\n")


async def index(request):
    return web.Response(text="ok\n")


def main():
    global DB
    DB = slow_database()
    app = web.Application()
    app.add_routes([web.get("/", index), web.get("/report", report),
                    web.get("/nap", nap), web.get("/rows", rows)])
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)


if __name__ == "__main__":
    main()
