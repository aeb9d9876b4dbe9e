"""`grounded-ip2p run`, the headless runner, in a subprocess against the ComfyUI at COMFYUI_PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from . import checkpoints
from .comfy_harness import comfy_path_or_none
from .grounding_models import provide


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("run-models")
    for folder, name in (
        ("grounding-dino", "groundingdino_swint_ogc.pth"),
        ("sams", "sam_vit_h_4b8939.pth"),
        ("clip_filter", "ViT-L-14.pt"),
    ):
        provide(None, root, folder, name)
    ckpt = checkpoints.ip2p_checkpoint()
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / ckpt.name).symlink_to(ckpt)
    return root


@pytest.fixture(scope="module")
def comfyui():
    path = comfy_path_or_none()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but COMFYUI_PATH is not set")
        pytest.skip("COMFYUI_PATH is not set: the runner needs a ComfyUI")
    return path


def run(*args, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "grounded_ip2p.headless.cli", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_grounded_edit_with_debug_outputs(comfyui, models_dir, tmp_path):
    Image.new("RGB", (96, 64), (90, 140, 200)).save(tmp_path / "in.png")
    out = tmp_path / "result" / "edit.png"
    res = run(
        "--image",
        str(tmp_path / "in.png"),
        "--instruction",
        "make the left car purple",
        "--out",
        str(out),
        "--comfyui",
        str(comfyui),
        "--models-dir",
        str(models_dir),
        "--cpu",
        "--steps",
        "2",
        "--seed",
        "3",
        "--debug",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    written = res.stdout.split()
    assert written == [str(out), str(out.with_name("edit_mask.png")), str(out.with_name("edit_boxes.png"))]
    assert Image.open(out).size == (96, 64)
    assert Image.open(out.with_name("edit_mask.png")).size == (96, 64)
    assert "IP2P Blended Sampler" in res.stderr and "[" + "#" * 30 + "] 2/2" in res.stderr  # the bar names the node


def test_missing_model_is_one_line(comfyui, models_dir, tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "in.png")
    res = run(
        "--image",
        str(tmp_path / "in.png"),
        "--out",
        str(tmp_path / "o.png"),
        "--comfyui",
        str(comfyui),
        "--models-dir",
        str(models_dir),
        "--cpu",
        "--sam",
        "sam_vit_x.pth",
    )
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("grounded-ip2p run: ") and "sam_vit_x.pth" in last and "models" in last


@pytest.mark.parametrize("case", ["missing", "unreadable", "workflow"])
def test_bad_input_is_one_line_without_starting_comfyui(tmp_path, case):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    image = {"missing": tmp_path / "gone.png", "unreadable": tmp_path / "bad.png", "workflow": tmp_path / "ok.png"}[
        case
    ]
    extra = ["--workflow", "no_such_workflow"] if case == "workflow" else []
    res = run("--image", str(image), "--out", str(tmp_path / "o.png"), *extra, timeout=60)
    assert res.returncode == 1 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert {"missing": "image not found", "unreadable": "cannot read", "workflow": "no workflow"}[case] in lines[0]


@pytest.fixture(scope="module")
def server(comfyui, tmp_path_factory):
    """A ComfyUI server (main.py --cpu) with the pack and the grounded_edit workflow's models."""
    import json

    from .browser_server import ComfyServer, prepare_base

    base = tmp_path_factory.mktemp("run-server")
    workflow = json.loads(
        (Path(__file__).resolve().parents[1] / "example_workflows" / "grounded_edit.json").read_text()
    )
    prepare_base(base, [workflow], comfyui)
    with ComfyServer(comfyui, base) as srv:
        yield srv


def test_grounded_edit_on_a_running_server(server, tmp_path):
    Image.new("RGB", (80, 56), (90, 140, 200)).save(tmp_path / "photo.png")
    out = tmp_path / "edit.jpg"
    res = run(
        "--server",
        server.url,
        "--image",
        str(tmp_path / "photo.png"),
        "--instruction",
        "make the dog red",
        "--out",
        str(out),
        "--steps",
        "2",
        "--debug",
    )
    assert res.returncode == 0, res.stderr[-2000:] + server.log_tail()
    assert res.stdout.split() == [str(out), str(tmp_path / "edit_mask.png"), str(tmp_path / "edit_boxes.png")]
    assert Image.open(out).size == (80, 56) and Image.open(out).format == "JPEG"


def test_missing_model_on_the_server_is_one_line(server, tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "photo.png")
    res = run(
        "--server",
        server.url,
        "--image",
        str(tmp_path / "photo.png"),
        "--out",
        str(tmp_path / "o.png"),
        "--grounding-dino",
        "groundingdino_swinb_cogcoor.pth",
    )
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("grounded-ip2p run: ") and "groundingdino_swinb_cogcoor.pth" in lines[-1]


@pytest.mark.parametrize("case", ["missing model", "no GPU"])
def test_local_run_errors_are_one_line_with_the_fix(comfyui, models_dir, tmp_path, case):
    """What reaches the terminal is the one line, never ComfyUI's log or a traceback."""
    import torch

    if case == "no GPU" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU: ComfyUI starts without --cpu")
    Image.new("RGB", (64, 64)).save(tmp_path / "in.png")
    extra = ["--sam", "sam_vit_x.pth", "--cpu"] if case == "missing model" else []
    res = run(
        "--image",
        str(tmp_path / "in.png"),
        "--out",
        str(tmp_path / "o.png"),
        "--comfyui",
        str(comfyui),
        "--models-dir",
        str(models_dir),
        *extra,
    )
    assert res.returncode == 1 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    fix = {"missing model": "`grounded-ip2p models` lists where to get it", "no GPU": "add --cpu"}[case]
    assert lines[0].startswith("grounded-ip2p run: ") and fix in lines[0]


def test_an_output_path_that_cannot_be_written_is_one_line_before_comfyui_starts(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    (tmp_path / "a_file").write_text("")
    for out, words in ((tmp_path / "a_file" / "o.png", "cannot write to"), (tmp_path / "o.gif", "give a .png")):
        res = run("--image", str(tmp_path / "in.png"), "--out", str(out), timeout=60)
        assert res.returncode == 1 and res.stdout == ""
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], res.stderr


def test_ctrl_c_mid_run_is_one_line_exit_130_and_leaves_nothing(comfyui, models_dir, tmp_path):
    import signal
    import time

    import psutil

    Image.new("RGB", (96, 64), (90, 140, 200)).save(tmp_path / "in.png")
    out = tmp_path / "result" / "edit.png"
    args = ["--image", str(tmp_path / "in.png"), "--out", str(out), "--comfyui", str(comfyui)]
    args += ["--models-dir", str(models_dir), "--cpu", "--steps", "50"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "grounded_ip2p.headless.cli", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    me = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any("main.py" in " ".join(c.cmdline()) for c in me.children()):
        time.sleep(0.2)
    time.sleep(8)  # ComfyUI is up or starting, the run under way
    children = me.children(recursive=True)
    proc.send_signal(signal.SIGINT)
    # alone this exits within a second; the whole suite's memory load has made it take over 60 s
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 130 and stdout == ""
    assert stderr.strip().splitlines() == ["grounded-ip2p run: interrupted"], stderr
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    assert not out.exists() and not list(tmp_path.rglob("*.part"))
