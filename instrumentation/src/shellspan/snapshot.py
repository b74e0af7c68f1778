"""The state of a shell at one moment: what a ``shell.snapshot`` event says.

The facts (cwd, the environment's changes since the session started, the virtualenv or conda
environment, the git branch and dirty state of the cwd, background jobs, resource usage) are
gathered here from what a collector can see: the Python shells look at their own process (on
their export thread), the bash/zsh agent at the shell's process through /proc
(``shellspan.posix.snapshots``). ``shellspan.spans.snapshot_event`` turns a ``Snapshot`` into
the event. Nothing here runs on a shell's prompt path.

Environment values are shown as command lines are: through the redactor, so secret-looking names
and values read ``[REDACTED]``; names are always shown; the values of the allow-list
(``SHOW_ALWAYS`` and ``SHELLSPAN_SNAPSHOT_ENV_SHOW``) are shown whole. Variables that change by
themselves (``PWD``, ``OLDPWD``, ``SHLVL``, ``_``, the trace context shellspan sets) are left out.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping

from shellspan.redact import MARK, is_secret_name

SHOW_ALWAYS = frozenset({
    "VIRTUAL_ENV", "CONDA_DEFAULT_ENV", "CONDA_PREFIX", "KUBECONFIG", "KUBE_CONTEXT",
    "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "GOOGLE_CLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT", "AZURE_CONFIG_DIR", "DOCKER_HOST", "DOCKER_CONTEXT", "TF_WORKSPACE",
    "ANSIBLE_CONFIG", "JAVA_HOME", "PYTHONPATH", "GOPATH", "NODE_ENV", "PATH", "LANG", "TZ",
})
IGNORED = frozenset({
    "PWD", "OLDPWD", "SHLVL", "_", "TRACEPARENT", "TRACESTATE", "BAGGAGE", "SHELLSPAN_SESSION_ID",
    "SHELLSPAN_RECORDER", "SHELLSPAN_RECORDER_SESSION", "COLUMNS", "LINES", "PS1", "PS2", "PS0",
})
MAX_VALUE_CHARS = 512
GIT_TIMEOUT_S = 2.0


class Snapshot:
    """Facts about a shell at one moment; None (or empty) where a fact is not known."""

    __slots__ = ("cwd", "env_changed", "env_removed", "env_source", "venv", "conda_env",
                 "git_branch", "git_dirty", "jobs", "cpu_user_s", "cpu_system_s", "max_rss_kb")

    def __init__(self, cwd: str = "") -> None:
        self.cwd = cwd
        self.env_changed: dict[str, str] = {}  # name -> the value as shown
        self.env_removed: list[str] = []
        self.env_source = ""  # where the environment was read; "" when it was not seen
        self.venv: str | None = None
        self.conda_env: str | None = None
        self.git_branch: str | None = None
        self.git_dirty: bool | None = None
        self.jobs: list[str] = []
        self.cpu_user_s: float | None = None
        self.cpu_system_s: float | None = None
        self.max_rss_kb: int | None = None


def shown_names(env: Mapping[str, str]) -> frozenset[str]:
    """The allow-list: ``SHOW_ALWAYS`` and the names in ``SHELLSPAN_SNAPSHOT_ENV_SHOW``."""
    extra = env.get("SHELLSPAN_SNAPSHOT_ENV_SHOW", "")
    return SHOW_ALWAYS | {n.strip() for n in extra.replace(",", " ").split() if n.strip()}


def display_value(name: str, value: str, redact: Callable[[str], tuple[str, bool]],
                  shown: frozenset[str] = SHOW_ALWAYS) -> str:
    """A variable's value as a snapshot shows it (see the module's docstring)."""
    if name not in shown:
        if is_secret_name(name):
            return MARK
        value, _ = redact(value)
    if len(value) > MAX_VALUE_CHARS:
        value = value[:MAX_VALUE_CHARS] + "…"
    return value


def env_changes(start: Mapping[str, str], now: Mapping[str, str],
                redact: Callable[[str], tuple[str, bool]],
                shown: frozenset[str] = SHOW_ALWAYS) -> tuple[dict[str, str], list[str]]:
    """(variables added or changed since ``start``, as shown; names removed)."""
    changed = {k: display_value(k, v, redact, shown) for k, v in now.items()
               if k not in IGNORED and start.get(k) != v}
    removed = sorted(k for k in start if k not in now and k not in IGNORED)
    return changed, removed


def environment(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(active virtualenv, active conda environment) named by an environment."""
    return env.get("VIRTUAL_ENV") or None, env.get("CONDA_DEFAULT_ENV") or None


def parse_environ(raw: bytes) -> dict[str, str]:
    """The NUL-separated ``NAME=value`` entries of /proc/PID/environ."""
    out: dict[str, str] = {}
    for entry in raw.split(b"\0"):
        name, eq, value = entry.partition(b"=")
        if eq and name:
            out[name.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return out


# --- git ---------------------------------------------------------------------------------------

def git_dir(cwd: str) -> str | None:
    """The git directory of the repository ``cwd`` is in (None: not in one); a worktree's
    ``.git`` file is followed to its directory."""
    path = cwd
    for _ in range(64):
        candidate = os.path.join(path, ".git")
        if os.path.isdir(candidate):
            return candidate
        if os.path.isfile(candidate):
            try:
                with open(candidate, encoding="utf-8", errors="replace") as f:
                    line = f.read(4096).strip()
            except OSError:
                return None
            if line.startswith("gitdir:"):
                target = line[7:].strip()
                return os.path.normpath(os.path.join(path, target))
            return None
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
    return None


def git_branch(gdir: str) -> str | None:
    """The branch checked out (a short commit id when detached), read from HEAD."""
    try:
        with open(os.path.join(gdir, "HEAD"), encoding="utf-8", errors="replace") as f:
            head = f.read(512).strip()
    except OSError:
        return None
    if head.startswith("ref:"):
        ref = head[4:].strip()
        return ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else ref
    return head[:12] or None


def git_dirty(cwd: str, timeout_s: float = GIT_TIMEOUT_S) -> bool | None:
    """Whether tracked files differ from the last commit (``git status``; None when git is
    missing, slow or fails). Optional locks are off, so the user's own git commands never find
    the index locked by this one."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        proc = subprocess.run(
            ["git", "-C", cwd, "status", "--porcelain", "--untracked-files=no",
             "--ignore-submodules"], stdin=subprocess.DEVNULL, capture_output=True,
            timeout=timeout_s, env=env, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return bool(proc.stdout.strip())


def add_git(snap: Snapshot, *, run_status: bool = True) -> None:
    """The git branch and (with ``run_status``) dirty state of the snapshot's cwd."""
    if not snap.cwd:
        return
    gdir = git_dir(snap.cwd)
    if gdir is None:
        return
    snap.git_branch = git_branch(gdir)
    if run_status:
        snap.git_dirty = git_dirty(snap.cwd)


# --- processes (Linux /proc) ----------------------------------------------------------------------

def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3, the state, is [0])."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return data[data.rfind(")") + 2:].split()


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (every thread's list)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(p) for p in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def cmdline(pid: int, redact: Callable[[str], tuple[str, bool]], limit: int = 120) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read(4096)
    except OSError:
        return ""
    text = " ".join(p.decode("utf-8", "replace") for p in raw.split(b"\0") if p)
    text, _ = redact(text)
    return text[:limit]


def jobs_of(pid: int, redact: Callable[[str], tuple[str, bool]], *,
            foreground_too: bool = False) -> list[str]:
    """"PID STATE command" of the children of ``pid`` that run in the background or are
    stopped (every child with ``foreground_too``, for shells without job control)."""
    out = []
    for child in children(pid):
        fields = stat_fields(child)
        if fields is None or fields[0] in ("Z", "X"):
            continue
        state, pgrp, tpgid = fields[0], fields[2], fields[5]
        if foreground_too or state == "T" or pgrp != tpgid:
            out.append(f"{child} {state} {cmdline(child, redact)}")
    return out


def add_process_usage(snap: Snapshot, pid: int) -> None:
    """CPU time of ``pid`` and of the children it waited for, and its peak resident size."""
    fields = stat_fields(pid)
    if fields is not None and len(fields) > 14:
        tick = os.sysconf("SC_CLK_TCK")
        try:
            snap.cpu_user_s = round((int(fields[11]) + int(fields[13])) / tick, 2)
            snap.cpu_system_s = round((int(fields[12]) + int(fields[14])) / tick, 2)
        except ValueError:
            pass
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    snap.max_rss_kb = int(line.split()[1])
                    break
    except (OSError, ValueError, IndexError):
        pass


# --- a Python shell's own process ----------------------------------------------------------------

def of_this_process(start_env: Mapping[str, str], redact: Callable[[str], tuple[str, bool]], *,
                    run_git_status: bool = True, git_cache: Snapshot | None = None) -> Snapshot:
    """A Python shell's snapshot of itself. Without ``run_git_status`` (at exit, where time is
    short) the dirty state is taken from ``git_cache``, a previous snapshot, when its cwd was
    the same."""
    import resource
    import sys

    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    snap = Snapshot(cwd)
    env = dict(os.environ)
    shown = shown_names(env)
    snap.env_changed, snap.env_removed = env_changes(start_env, env, redact, shown)
    snap.env_source = "process"
    snap.venv, snap.conda_env = environment(env)
    if snap.venv is None and sys.prefix != getattr(sys, "base_prefix", sys.prefix):
        snap.venv = sys.prefix
    add_git(snap, run_status=run_git_status)
    if not run_git_status and git_cache is not None and git_cache.cwd == snap.cwd:
        snap.git_dirty = git_cache.git_dirty
    snap.jobs = jobs_of(os.getpid(), redact, foreground_too=True)
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    snap.cpu_user_s = round(own.ru_utime + kids.ru_utime, 2)
    snap.cpu_system_s = round(own.ru_stime + kids.ru_stime, 2)
    snap.max_rss_kb = int(own.ru_maxrss)
    return snap

