"""The live view's HTTP server: uvicorn serving listener.web.app on a socket bound here.

The socket is bound (and listening) before uvicorn starts, so ``--port 0`` can print
the port it got and a client may connect at once. uvicorn runs in a thread of its own
(``start_in_thread``); ``shutdown`` asks it to stop. Its own access log is off: the
access middleware logs each request without its query (which may hold the token).
"""

from __future__ import annotations

import logging
import socket
import threading

import uvicorn

from listener.web.app import LiveApp, create_app

# Answers to slow or stalled clients are bounded: a connection idle this long is closed.
KEEP_ALIVE = 5


class LiveServer:
    """The server, bound at construction; ``serve_forever`` serves (blocking),
    ``shutdown`` stops it from another thread, ``server_close`` frees the socket and the
    database reader."""

    def __init__(self, app: LiveApp, host: str, port: int) -> None:
        self.app = app
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        self.socket = socket.socket(family, kind, proto)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(address[:2] if family == socket.AF_INET else address)
            self.socket.listen(128)
        except OSError:
            self.socket.close()
            raise
        self.server_address = self.socket.getsockname()
        # uvicorn's start-up lines would go wherever the root logger writes; only its problems matter.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        config = uvicorn.Config(create_app(app), log_config=None, access_log=False, server_header=False,
                                proxy_headers=False, lifespan="off", timeout_keep_alive=KEEP_ALIVE,
                                timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._stopped = threading.Event()
        self._started = False

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/"

    def serve_forever(self) -> None:
        self._started = True
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Ask uvicorn to stop and wait (up to ``timeout`` s) until it has: requests in
        flight finish, then the socket may be closed."""
        self._server.should_exit = True
        if self._started:
            self._stopped.wait(timeout)

    def server_close(self) -> None:
        self.socket.close()
        self.app.reader.close()


def start_in_thread(server: LiveServer) -> threading.Thread:
    """Serve in a daemon thread (uvicorn installs no signal handlers off the main thread)."""
    thread = threading.Thread(target=server.serve_forever, name="listener-serve", daemon=True)
    thread.start()
    return thread
