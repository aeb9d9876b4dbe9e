"""The ordinary installs, in fresh virtual environments: `pip install -r requirements.txt` (what the
README and ComfyUI-Manager do) and `pip install` of the pack (which also gives the command line).

Torch and the other heavy dependencies are not downloaded again: each fresh environment sees the
test environment's packages through a folder of links, minus every English spaCy pipeline and the
pack itself, so what pip has to install there is exactly what these installs add.
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HIDDEN = ("en_core_web", "en-core-web", "grounded_ip2p", "grounded-ip2p", "__editable__")
OWN_TOOLS = {"pip", "setuptools", "wheel", "_distutils_hack", "pkg_resources", "distutils"}  # each env has its own

pytestmark = [pytest.mark.core, pytest.mark.slow]


@pytest.fixture(scope="module")
def shared_packages(tmp_path_factory) -> Path:
    """A folder of links to this environment's packages, without English pipelines or the pack."""
    base = tmp_path_factory.mktemp("shared-site-packages")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.lower()
        if name.startswith(HIDDEN) or entry.suffix == ".pth" or name.split("-")[0] in OWN_TOOLS:
            continue
        (base / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return base


def fresh_env(root: Path, shared: Path) -> Path:
    """A new virtual environment that also imports from ``shared``; its python."""
    venv.EnvBuilder(with_pip=True).create(root)
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "shared.pth").write_text(str(shared) + "\n")
    return python


def pip(python: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    return subprocess.run(
        [python, "-m", "pip", "install", "-v", *args], capture_output=True, text=True, timeout=900, env=env
    )


PIPELINE_CHECK = (
    "import sys; sys.path.insert(0, sys.argv[1])\n"
    "from grounding.spacy_pipeline import load_english, pipeline_installed\n"
    "assert pipeline_installed()\n"
    "nlp = load_english(); print(nlp.meta['name'], nlp.meta['version'])\n"
)


def test_requirements_txt_installs_an_english_pipeline(tmp_path, shared_packages):
    python = fresh_env(tmp_path / "env", shared_packages)
    missing = subprocess.run([python, "-c", PIPELINE_CHECK, str(REPO)], capture_output=True, text=True)
    assert missing.returncode != 0, "the fresh environment already had an English pipeline"
    res = pip(python, "-r", str(REPO / "requirements.txt"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    found = subprocess.run([python, "-c", PIPELINE_CHECK, str(REPO)], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr[-3000:]
    name, version = found.stdout.split()
    assert name.startswith("core_web_sm") and version == "3.8.0"


def test_pip_install_of_the_pack_gives_the_pipeline_and_the_command(tmp_path, shared_packages):
    python = fresh_env(tmp_path / "env", shared_packages)
    res = pip(python, str(REPO))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "grounded_ip2p.grounding.data" not in res.stdout + res.stderr  # no setuptools package warning
    command = python.parent / ("grounded-ip2p.exe" if os.name == "nt" else "grounded-ip2p")
    version = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("grounded-ip2p "), version.stderr
    parsed = subprocess.run(
        [command, "parse", "--json", "make the left car purple"], capture_output=True, text=True, timeout=300
    )
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    assert '"target": "the left car"' in parsed.stdout or '"target":"the left car"' in parsed.stdout


def test_the_start_up_check_finds_no_pipeline_where_there_is_none(tmp_path, shared_packages):
    python = fresh_env(tmp_path / "env", shared_packages)
    code = "import sys; sys.path.insert(0, sys.argv[1])\nfrom grounding.spacy_pipeline import pipeline_installed\nprint(pipeline_installed())"
    res = subprocess.run([python, "-c", code, str(REPO)], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
