"""Helpers for the kill -9 tests: a real ``embed`` in a child process, and reading what a killed run left.

Used by ``test_cache.py`` (one kill point) and ``test_reliability_kill.py`` (twenty).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

# argv: corpus file (one text per line), encoder name, chunk size. Prints "ready" once the encoder is loaded
# and the texts are read, just before ``embed`` starts, so that a kill can be aimed at the embedding itself.
EMBED_RUN = """
import sys
from univar.encoders import embed
from univar.registry import get_encoder
texts = [line for line in open(sys.argv[1], encoding="utf-8").read().split("\\n") if line]
encoder = get_encoder(sys.argv[2])
print("ready", flush=True)
embed(texts, encoder, chunk=int(sys.argv[3]), progress=False)
"""


def write_corpus(path: Path, texts: list[str]) -> Path:
    assert all("\n" not in t for t in texts)
    path.write_text("\n".join(texts), encoding="utf-8")
    return path


def start_embed(corpus: Path, cache_root: Path, encoder: str, chunk: int) -> subprocess.Popen:
    env = {**os.environ, "UNIVAR_CACHE_DIR": str(cache_root), "UNIVAR_PROGRESS": "0"}
    return subprocess.Popen([sys.executable, "-c", EMBED_RUN, str(corpus), encoder, str(chunk)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(proc, stdout: Path | None = None, timeout: float = 120) -> None:
    """Block until the child prints ``ready`` (it has loaded everything and is about to embed): read from its
    pipe, or, for a :class:`ZygoteChild`, from its ``stdout`` file."""
    if stdout is None:
        line = proc.stdout.readline()
    else:
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline and "ready" not in _text(stdout):
            time.sleep(0.005)
        line = _text(stdout)
    if line.strip() != "ready":
        proc.kill()
        said = proc.communicate(timeout=timeout)[1] if stdout is None else line  # a pipe: what it wrote to stderr
        raise AssertionError(f"the embedding child did not start: {said[-2000:]}")


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def kill9(proc: subprocess.Popen) -> bool:
    """SIGKILL the child; False if it had already exited on its own (then nothing was interrupted)."""
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    return proc.returncode == -signal.SIGKILL


def cache_rows(cache_root: Path) -> int:
    """Rows in the (single) embedding cache database under ``cache_root``; 0 before it exists."""
    db_dir = cache_root / "embeddings"
    dbs = sorted(db_dir.glob("*.sqlite")) if db_dir.exists() else []
    if not dbs:
        return 0
    assert len(dbs) == 1, dbs
    with sqlite3.connect(dbs[0], timeout=5) as db:
        return int(db.execute("SELECT COUNT(*) FROM emb").fetchone()[0])


def wait_for_rows(proc: subprocess.Popen, cache_root: Path, at_least: int, timeout: float = 240,
                  every: float = 0.1) -> int:
    """Poll the cache (every ``every`` seconds) while the child runs until it holds ``at_least`` rows; returns
    the last count seen."""
    deadline = time.monotonic() + timeout
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(every)
        try:
            stored = cache_rows(cache_root)
        except sqlite3.OperationalError:  # the database is being created or locked for a moment
            continue
        if stored >= at_least:
            break
    return stored


# A "zygote": a Python process that imports univar and its heavy dependencies once, then forks a child per
# command that runs ``univar.cli.main(argv)`` with stdout and stderr going to files. The child is a real
# process running the real command line; only the imports (about ten seconds of torch on two busy cores)
# are not paid again for each of twenty kills.
ZYGOTE = r"""
import json, os, sys
import univar.cli
for name in sys.argv[1:]:
    __import__(name)
sys.stdout.flush(); sys.stderr.flush()
print("ready", flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "run":
        pid = os.fork()
        if pid == 0:
            try:
                os.setpgid(0, 0)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(os.open(cmd["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
                os.dup2(os.open(cmd["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
                os.environ.update(cmd.get("env", {}))
                try:
                    if "code" in cmd:  # a Python script run as ``python -c CODE ARGV...`` would run it
                        sys.argv = ["-c", *cmd["argv"]]
                        exec(compile(cmd["code"], "<zygote>", "exec"), {"__name__": "__main__"})
                        code = 0
                    else:
                        code = univar.cli.main(cmd["argv"])
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
                sys.stdout.flush(); sys.stderr.flush()
            except BaseException:
                import traceback
                traceback.print_exc()
                sys.stderr.flush()
                code = 99
            os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
    elif cmd["op"] == "wait":
        flags = 0 if cmd.get("block") else os.WNOHANG
        pid, status = os.waitpid(cmd["pid"], flags)
        if pid == 0:
            print(json.dumps({"running": True}), flush=True)
        elif os.WIFSIGNALED(status):
            print(json.dumps({"running": False, "signal": os.WTERMSIG(status)}), flush=True)
        else:
            print(json.dumps({"running": False, "code": os.WEXITSTATUS(status)}), flush=True)
"""


class Zygote:
    """``with Zygote(["torch", "univar.model.train"], env) as z: pid = z.run(argv, out, err); z.kill9(pid)``."""

    def __init__(self, modules: list[str], env: dict | None = None):
        self.modules, self.env = modules, env

    def __enter__(self) -> "Zygote":
        import json  # noqa: F401

        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE, *self.modules], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=self.env)
        if self.proc.stdout.readline().strip() != "ready":
            raise AssertionError("the zygote did not start")
        return self

    def _ask(self, **cmd) -> dict:
        import json

        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def run(self, argv: list[str], stdout: Path, stderr: Path, env: dict | None = None) -> int:
        return self._ask(op="run", argv=argv, stdout=str(stdout), stderr=str(stderr), env=env or {})["pid"]

    def run_python(self, code: str, argv: list[str], stdout: Path, stderr: Path, env: dict | None = None) -> int:
        """Fork a child that runs ``code`` as ``python -c code *argv`` would (``sys.argv[1:]`` is ``argv``)."""
        return self._ask(op="run", code=code, argv=argv, stdout=str(stdout), stderr=str(stderr),
                         env=env or {})["pid"]

    def child(self, pid: int) -> "ZygoteChild":
        return ZygoteChild(self, pid)

    def poll(self, pid: int) -> dict:
        """``{"running": True}`` or how the child ended: ``{"code": n}`` or ``{"signal": n}``."""
        return self._ask(op="wait", pid=pid)

    def wait(self, pid: int) -> dict:
        return self._ask(op="wait", pid=pid, block=True)

    def kill9(self, pid: int) -> bool:
        """SIGKILL the child; False if it had already ended on its own."""
        state = self.poll(pid)
        if not state["running"]:
            return False
        os.kill(pid, signal.SIGKILL)
        return self.wait(pid).get("signal") == signal.SIGKILL

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class ZygoteChild:
    """One forked child, with the part of ``subprocess.Popen``'s interface the helpers above use."""

    def __init__(self, zygote: Zygote, pid: int):
        self.zygote, self.pid, self.ended = zygote, pid, None

    def poll(self) -> int | None:
        """None while it runs, else its exit code (minus the signal that ended it)."""
        if self.ended is None:  # once reaped, the zygote cannot be asked about the pid again
            state = self.zygote.poll(self.pid)
            if state["running"]:
                return None
            self.ended = state
        return self.ended.get("code", -self.ended.get("signal", 0))

    def kill9(self) -> bool:
        """SIGKILL it; False if it had already ended on its own."""
        return self.ended is None and self.zygote.kill9(self.pid)

    def kill(self) -> None:
        if self.poll() is None:
            self.kill9()
