"""Instrument every interactive Python on a host.

Two ways, both documented in docs/python-shells.md:

* a ``.pth`` file in site-packages (``shellspan auto-install``) containing
  ``import shellspan.auto; shellspan.auto.install()``: it wraps ``sys.__interactivehook__``,
  which the interpreter calls only when it is about to start its interactive prompt, so
  non-interactive programs pay only for importing this small module;
* ``PYTHONSTARTUP`` pointing at ``shellspan/startup.py``.

Either way the interpreter's prompt is replaced by the instrumented console
(``shellspan.repl``), and the process exits when that console ends.
"""

from __future__ import annotations

import os
import sys

PTH_NAME = "shellspan-auto.pth"
PTH_LINE = "import shellspan.auto; shellspan.auto.install()\n"


def _enabled() -> bool:
    env = os.environ
    return (env.get("SHELLSPAN_AUTO", "1").lower() not in ("0", "false", "no", "off")
            and env.get("OTEL_SDK_DISABLED", "").lower() not in ("1", "true")
            and env.get("SHELLSPAN_DISABLED", "").lower() not in ("1", "true"))


def run_instrumented_repl() -> None:
    """Run the instrumented console in place of the interpreter's prompt, then exit."""
    from shellspan import repl

    if repl.ACTIVE or not _enabled():
        return
    code = repl.main([], shell_type=os.environ.get("SHELLSPAN_SHELL_TYPE", "python"),
                     run_startup=False)  # the interpreter runs PYTHONSTARTUP itself
    sys.stdout.flush()
    raise SystemExit(code)


def _wrap_hook() -> None:
    orig = getattr(sys, "__interactivehook__", None)
    if getattr(orig, "_shellspan", False):
        return

    def hook() -> None:
        from shellspan import repl

        if repl.ACTIVE or not _enabled():
            if orig is not None:
                orig()
            return
        run_instrumented_repl()  # calls the original hook itself (readline, history)

    hook._shellspan = True  # type: ignore[attr-defined]
    hook.__wrapped__ = orig  # type: ignore[attr-defined]
    sys.__interactivehook__ = hook


def install() -> None:
    """Arrange for the interactive prompt (if any) to be instrumented. Cheap; safe to repeat."""
    if getattr(sys, "__interactivehook__", None) is not None:
        _wrap_hook()
        return
    site = sys.modules.get("site")
    orig_enable = getattr(site, "enablerlcompleter", None)
    if orig_enable is None or getattr(orig_enable, "_shellspan", False):
        _wrap_hook()
        return

    def enablerlcompleter() -> None:  # site.main() calls this after processing .pth files
        orig_enable()
        _wrap_hook()

    enablerlcompleter._shellspan = True  # type: ignore[attr-defined]
    site.enablerlcompleter = enablerlcompleter  # type: ignore[union-attr]
    _wrap_hook()  # for interpreters whose site does not call enablerlcompleter (-I, -S)


def _site_dir(target: str | None) -> str:
    if target:
        return target
    import sysconfig

    return sysconfig.get_paths()["purelib"]


def install_pth(target: str | None = None) -> str:
    """Write ``shellspan-auto.pth`` into ``target`` (default: this interpreter's site-packages).

    Mode 0644 (every user's interpreter reads it), created under a fresh name with ``O_EXCL |
    O_NOFOLLOW`` and renamed into place, so a symlink planted at either name is never written
    through (the rename replaces a link at the final name instead of following it)."""
    from shellspan.files import replace_file

    path = os.path.join(_site_dir(target), PTH_NAME)
    replace_file(path, PTH_LINE.encode(), 0o644)
    return path


def uninstall_pth(target: str | None = None) -> str:
    path = os.path.join(_site_dir(target), PTH_NAME)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return path
