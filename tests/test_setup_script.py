"""scripts/setup checks the Debian packages of scripts/debian-packages: as root with apt-get it installs the
missing ones; otherwise it stops with the one `apt-get install` line. Run for real on a copy of the scripts, with
made-up `ldconfig`, `id` and `apt-get` first on PATH and the path probes pointed at a made-up file system
(SYSTEM_ROOT); `--system-only` stops it before .venv. requirements.lock pins what pyproject.toml asks for."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

ALL_LIBS = ["libpango-1.0.so.0", "libpangoft2-1.0.so.0", "libharfbuzz-subset.so.0", "libharfbuzz.so.0",
            "libatomic.so.1"] + [f"libfiller{n}.so.1" for n in range(2000)]  # as long as a real ldconfig -p
ALL_PATHS = ["usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "usr/bin/chromium", "usr/lib/postgresql/15/bin/initdb"]

FAKE_LDCONFIG = """#!/bin/sh
[ "$1" = -p ] || exit 2
echo "$(wc -l < "$FAKE/libs") libs found in cache \\`/etc/ld.so.cache'"
while read -r lib; do printf '\\t%s (libc6,x86-64) => /lib/x86_64-linux-gnu/%s\\n' "$lib" "$lib"; done < "$FAKE/libs"
"""
FAKE_ID = """#!/bin/sh
[ "$1" = -u ] && { echo "$FAKE_UID"; exit 0; }
exec /usr/bin/id "$@"
"""
# apt-get: logs its arguments; `install` brings what $FAKE/installs lists (lib:NAME or path:FILE), if anything.
FAKE_APT = """#!/bin/sh
echo "$*" >> "$FAKE/apt.log"
[ "$1" = update ] && exit 0
while read -r what; do
  case "$what" in
    lib:*) echo "${what#lib:}" >> "$FAKE/libs" ;;
    path:*) mkdir -p "$(dirname "$SYSTEM_ROOT/${what#path:}")"; touch "$SYSTEM_ROOT/${what#path:}" ;;
  esac
done < "$FAKE/installs"
"""


class Machine:
    """A copy of scripts/setup and its package list, and a made-up system around it."""

    def __init__(self, tmp: Path):
        self.repo, self.fake, self.root = tmp / "repo", tmp / "fake", tmp / "root"
        (self.repo / "scripts").mkdir(parents=True)
        for name in ("setup", "debian-packages"):
            shutil.copy2(ROOT / "scripts" / name, self.repo / "scripts" / name)
        (self.fake / "bin").mkdir(parents=True)
        for name, text in (("ldconfig", FAKE_LDCONFIG), ("id", FAKE_ID), ("apt-get", FAKE_APT)):
            path = self.fake / "bin" / name
            path.write_text(text)
            path.chmod(0o755)
        (self.fake / "installs").write_text("")
        self.root.mkdir()
        self.uid = 1000
        self.has(libs=ALL_LIBS, paths=ALL_PATHS)
        (self.repo / ".venv" / "bin").mkdir(parents=True)  # a .venv already made: the venv probe is not asked
        (self.repo / ".venv" / "bin" / "python").symlink_to(sys.executable)

    def has(self, libs: list[str], paths: list[str]) -> None:
        (self.fake / "libs").write_text("".join(f"{lib}\n" for lib in libs))
        for path in paths:
            (self.root / path).parent.mkdir(parents=True, exist_ok=True)
            (self.root / path).touch()

    def lacks(self, lib: str | None = None, path: str | None = None) -> None:
        if lib:
            self.has([x for x in (self.fake / "libs").read_text().split() if x != lib], [])
        if path:
            (self.root / path).unlink()

    def apt_brings(self, *what: str) -> None:
        (self.fake / "installs").write_text("".join(f"{w}\n" for w in what))

    @property
    def apt_calls(self) -> list[str]:
        log = self.fake / "apt.log"
        return log.read_text().splitlines() if log.exists() else []

    def setup(self, *args: str, python: str = sys.executable) -> subprocess.CompletedProcess:
        env = {**os.environ, "PATH": f"{self.fake / 'bin'}:{os.environ['PATH']}", "FAKE": str(self.fake),
               "FAKE_UID": str(self.uid), "SYSTEM_ROOT": str(self.root), "PYTHON": python}
        return subprocess.run(["bash", str(self.repo / "scripts" / "setup"), "--system-only", *args], env=env,
                              capture_output=True, text=True, timeout=60)


@pytest.fixture
def machine(tmp_path) -> Machine:
    return Machine(tmp_path)


def install_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if "apt-get install" in line]


def test_a_complete_system_passes_quietly_and_installs_nothing(machine):
    for uid in (1000, 0):
        machine.uid = uid
        done = machine.setup("--for-tests")
        assert done.returncode == 0 and done.stderr == "", done.stderr
    assert machine.apt_calls == []


def test_as_a_user_it_stops_with_the_one_apt_get_line_for_what_is_missing(machine):
    machine.lacks(lib="libharfbuzz-subset.so.0", path="usr/bin/chromium")
    done = machine.setup("--for-tests")
    assert done.returncode == 1
    assert install_lines(done.stderr) == ["sudo apt-get install -y libharfbuzz-subset0 chromium"]
    assert "libharfbuzz-subset0: HarfBuzz-Subset" in done.stderr and "chromium: the real-browser tests" in done.stderr
    assert machine.apt_calls == []


def test_running_the_product_does_not_ask_for_the_test_tools(machine):
    machine.lacks(path="usr/bin/chromium")
    machine.lacks(path="usr/lib/postgresql/15/bin/initdb")
    assert machine.setup().returncode == 0
    done = machine.setup("--for-tests")
    assert done.returncode == 1 and install_lines(done.stderr) == ["sudo apt-get install -y chromium postgresql"]
    machine.lacks(lib="libpango-1.0.so.0")
    done = machine.setup()
    assert done.returncode == 1 and install_lines(done.stderr) == ["sudo apt-get install -y libpango-1.0-0"]


def test_as_root_it_installs_the_missing_packages_with_apt(machine):
    machine.uid = 0
    machine.lacks(lib="libharfbuzz-subset.so.0", path="usr/bin/chromium")
    machine.apt_brings("lib:libharfbuzz-subset.so.0", "path:usr/bin/chromium")
    done = machine.setup("--for-tests")
    assert done.returncode == 0, done.stderr
    assert machine.apt_calls == ["update -qq", "install -y -qq libharfbuzz-subset0 chromium"]
    assert "installing from Debian: libharfbuzz-subset0 chromium" in done.stderr
    again = machine.setup("--for-tests")
    assert again.returncode == 0 and len(machine.apt_calls) == 2  # nothing more to install


def test_as_root_it_fails_when_apt_did_not_bring_the_library(machine):
    machine.uid = 0
    machine.lacks(lib="libharfbuzz-subset.so.0")
    done = machine.setup()
    assert done.returncode == 1
    assert "still missing after apt-get install" in done.stderr and "libharfbuzz-subset0" in done.stderr


def test_a_python_without_venv_asks_for_python3_venv_while_there_is_no_venv(machine, tmp_path):
    no_ensurepip = tmp_path / "python-without-venv"
    no_ensurepip.write_text('#!/bin/sh\necho "No module named ensurepip" >&2; exit 1\n')
    no_ensurepip.chmod(0o755)
    assert machine.setup(python=str(no_ensurepip)).returncode == 0  # .venv is there already
    shutil.rmtree(machine.repo / ".venv")
    done = machine.setup(python=str(no_ensurepip))
    assert done.returncode == 1 and install_lines(done.stderr) == ["sudo apt-get install -y python3-venv"]
    assert machine.setup(python=sys.executable).returncode == 0


def test_an_unknown_argument_is_refused(machine):
    done = machine.setup("--for-test")
    assert done.returncode == 2 and "unknown argument --for-test" in done.stderr


# --- the lock file -----------------------------------------------------------------------------------------------

def _locked() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) from requirements.lock."""
    text = (ROOT / "requirements.lock").read_text()
    pins = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        m = re.match(r"([A-Za-z0-9._-]+)==([^\s;\\]+)", block)
        if m:
            pins[canonicalize_name(m.group(1))] = (m.group(2), block.count("--hash=sha256:"))
    return pins


def test_the_lock_pins_every_requirement_of_pyproject_within_its_range_with_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [Requirement(r) for r in project["project"]["dependencies"]
              + project["project"]["optional-dependencies"]["test"] + project["build-system"]["requires"]]
    pins = _locked()
    assert len(pins) > len(wanted)  # and what they need in turn
    for req in wanted:
        version, hashes = pins[canonicalize_name(req.name)]
        assert req.specifier.contains(version, prereleases=True), f"{req} locked at {version}"
        for extra in req.extras:  # psycopg[binary] -> psycopg-binary, locked on its own (--strip-extras)
            assert canonicalize_name(f"{req.name}-{extra}") in pins
    assert all(hashes > 0 for _version, hashes in pins.values())


def test_the_venv_holds_exactly_the_locked_versions():
    from importlib.metadata import distributions

    pins = _locked()
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    assert {name: installed.get(name) for name in pins} == {name: v for name, (v, _h) in pins.items()}
