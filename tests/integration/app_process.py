"""One `orders <command>` process (or another program) with its log in a file: to kill
(SIGKILL) or stop."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ORDERS = (sys.executable, "-m", "app")


class AppProcess:
    """`program` (`orders` by default) with the arguments `command`."""

    def __init__(
        self,
        command: str | list[str],
        env: dict[str, str],
        log_path: Path,
        *,
        program: tuple[str, ...] = ORDERS,
    ) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        arguments = [command] if isinstance(command, str) else command
        self.process = subprocess.Popen(
            [*program, *arguments], env=env, stdout=self._log, stderr=self._log
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


class SagaProcess(AppProcess):
    """`orders saga`, or with `participant` `orders participant <participant>`."""

    def __init__(self, env: dict[str, str], log_path: Path, participant: str | None = None):
        command = ["saga"] if participant is None else ["participant", participant]
        super().__init__(command, env, log_path)

    async def leading(self, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while not re.search(r"leading (saga|participant) saga:", self.log()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the saga process does not lead: {self.log()}")
            await asyncio.sleep(0.05)
