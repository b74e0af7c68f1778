"""The spool: bounds, the claim protocol, and private files never written through a symlink."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from shellspan.handoff import send_entries
from shellspan.spool import CLAIM, SUFFIX, Spool, UnsafeDirectory, open_private_dir
from shellspan.transport import HttpSender
from shellspan_testing.sinkproc import free_port

NOBODY = 65534

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="giving a directory to another user needs root")


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_spool_is_bounded_and_claims_are_exclusive(tmp_path):
    spool = Spool(str(tmp_path / "spool"), max_bytes=250, max_files=100)
    for i in range(5):
        spool.write(bytes([i]) * 100)
    assert spool.size() == (2, 200)  # the oldest were dropped
    claimed = list(spool.claim())
    assert [body[0] for _, body in claimed] == [3, 4]
    assert all(CLAIM + str(os.getpid()) in path for path, _ in claimed)
    assert list(spool.claim()) == []  # nothing left to claim twice
    spool.release(claimed[0][0])
    spool.ack(claimed[1][0])
    assert [b[0] for _, b in spool.claim()] == [3]


def test_a_claim_of_a_dead_process_is_given_back(tmp_path):
    spool = Spool(str(tmp_path / "spool"))
    path = spool.write(b"entry")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    os.rename(path, path + CLAIM + dead)
    assert [body for _, body in spool.claim()] == [b"entry"]


def test_directory_and_files_are_private(tmp_path):
    os.umask(0o022)
    d = tmp_path / "state" / "spool"
    spool = Spool(str(d))
    path = spool.write(b"x" * 10)
    assert mode(d) == 0o700 and mode(path) == 0o600
    assert [n for n in os.listdir(d) if n.endswith(".tmp")] == []  # written, then renamed
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    os.chmod(loose, 0o777)
    Spool(str(loose)).write(b"y")
    assert mode(loose) == 0o700  # ours, but open to others: made private


def test_a_symlinked_spool_directory_is_refused_and_recording_goes_on(tmp_path, monkeypatch,
                                                                      capfd):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    target = tmp_path / "attacker-readable"
    target.mkdir(mode=0o755)
    link = tmp_path / "spool"
    link.symlink_to(target)
    with pytest.raises(UnsafeDirectory, match="symbolic link"):
        open_private_dir(str(link))
    spool = Spool(str(link))
    path = spool.write(b"secret command line")
    assert path is not None and os.listdir(target) == []  # nothing went through the link
    fallback = tmp_path / "home" / ".local" / "state" / "shellspan" / "spool"
    assert spool.dir == str(fallback) and os.path.dirname(path) == str(fallback)
    assert "symbolic link" in spool.problem and mode(fallback) == 0o700
    err = capfd.readouterr().err
    assert err.count("shellspan: spool directory refused") == 1 and str(fallback) in err
    spool.write(b"again")
    assert "refused" not in capfd.readouterr().err  # said once
    assert spool.size()[0] == 2


@needs_root
def test_a_spool_directory_owned_by_someone_else_is_refused(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o777)
    os.chmod(foreign, 0o777)
    os.chown(foreign, NOBODY, NOBODY)
    with pytest.raises(UnsafeDirectory, match=f"owned by uid {NOBODY}"):
        open_private_dir(str(foreign))
    spool = Spool(str(foreign))
    assert spool.write(b"entry") is not None
    assert os.listdir(foreign) == [] and spool.dir != str(foreign)
    assert f"owned by uid {NOBODY}" in capfd.readouterr().err
    assert mode(foreign) == 0o777 and os.stat(foreign).st_uid == NOBODY  # left as it was


def test_a_file_is_not_a_spool_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    f = tmp_path / "file"
    f.write_text("")
    spool = Spool(str(f))
    assert spool.write(b"z") is not None and "not a directory" in spool.problem


def test_symlinks_and_foreign_files_in_the_spool_are_never_followed(tmp_path):
    spool = Spool(str(tmp_path / "spool"))
    spool.write(b"mine")
    victim = tmp_path / "victim"
    victim.write_text("do not touch")
    planted = tmp_path / "spool" / f"00000000000000000000-1-1-aa{SUFFIX}"
    planted.symlink_to(victim)
    claimed = list(spool.claim())
    assert [body for _, body in claimed] == [b"mine"]  # the link was neither read nor sent
    assert not os.path.lexists(planted) and victim.read_text() == "do not touch"
    assert spool.claim_entry("../victim" + SUFFIX) is None
    assert spool.claim_entry(".hidden" + SUFFIX) is None


@needs_root
def test_an_entry_owned_by_another_user_is_dropped(tmp_path):
    spool = Spool(str(tmp_path / "spool"))
    path = spool.write(b"forged spans")
    os.chown(path, NOBODY, NOBODY)
    assert list(spool.claim()) == [] and not os.path.exists(path)


def test_the_exit_helper_reads_entries_of_its_own_spool_only(tmp_path):
    spool = Spool(str(tmp_path / "spool"))
    outside = tmp_path / f"elsewhere{SUFFIX}"
    outside.write_bytes(b"not a spool entry")
    dead = HttpSender(f"http://127.0.0.1:{free_port()}/v1/traces", timeout_s=0.5)
    assert send_entries(spool, dead, [str(outside)], deadline_s=0.0) == 0
    assert outside.read_bytes() == b"not a spool entry"
    kept = spool.write(b"entry")
    assert send_entries(spool, dead, [kept], deadline_s=0.0) == 0
    assert spool.pending() == [kept]  # not sent: given back to the spool
