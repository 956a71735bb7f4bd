"""A RabbitMQ node of our own: started by the distribution's server script on ports and a data folder of its own,
stopped by its name or its PID. What a test that stops, freezes or alarms a broker does it to (never the machine's
broker, which other work on the machine relies on); bench/cluster.py builds its three-node cluster of these."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aio_pika


class RabbitNode:
    def __init__(self, name: str, port: int, base: Path | None = None) -> None:
        self.name = name
        self.full = f"{name}@localhost"
        self.port = port
        # Owned by the rabbitmq user the server script switches to: under /tmp, whose parents it can traverse.
        self.base = (base or Path(tempfile.mkdtemp(prefix=f"{name}-"))) / name
        self.base.mkdir(parents=True, exist_ok=True)
        plugins = self.base / "enabled_plugins"
        plugins.write_text("[].\n")  # no management listener: it would take the machine broker's port
        for path in (self.base.parent, self.base, plugins):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.full,
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(port + 20000),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_PID_FILE": str(self.base / "pid"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "none"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "none-advanced.config"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["rabbitmq-server"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 180
        while True:  # the Erlang node takes a while to exist at all; then await_startup waits for the broker
            try:
                self.ctl("await_startup", "--timeout", "120")
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(1)

    def ctl(self, *args: str) -> str:
        return subprocess.run(
            ["rabbitmqctl", "-n", self.full, *args], env=self.env, check=True, capture_output=True, text=True,
            timeout=180,
        ).stdout  # fmt: skip

    def beam(self) -> int:
        """The node's Erlang VM (what dies with the machine), from the pid file the node writes."""
        return int((self.base / "pid").read_text().strip())

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The VM stopped (SIGSTOP) for the block: it keeps its sockets open and answers nothing."""
        pid = self.beam()
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def kill(self) -> None:
        os.kill(self.beam(), signal.SIGKILL)

    def stop(self) -> None:
        try:
            self.ctl("stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            try:
                self.kill()
            except (OSError, ValueError):
                pass
        if self.process is not None:
            self.process.wait(timeout=60)


class Sentinel:
    """One connection to the machine's broker held for the whole run, on a thread of its own: if a test stopped that
    broker's app, restarted it or closed its connections, the connection is gone at the end and the run fails."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.closed_because: str | None = None
        self._closing = False
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._hold()), daemon=True)

    async def _hold(self) -> None:
        connection = await aio_pika.connect(self.url, timeout=10)
        connection.close_callbacks.add(self._closed)
        self._ready.set()
        await asyncio.to_thread(self._stop.wait)
        if self.closed_because is None:
            self._closing = True
            await connection.close()

    def _closed(self, _: object, exc: BaseException | None) -> None:
        if not self._closing:
            self.closed_because = repr(exc)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(15)

    def stop(self) -> str | None:
        """Why the machine's broker dropped the connection during the run, or None when it never did."""
        self._stop.set()
        self._thread.join(15)
        return self.closed_because
