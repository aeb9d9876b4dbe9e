"""`grounded-ip2p models`: what the workflows need, where it goes, and downloads checked against the
catalog. Downloads come from a local HTTP server on 127.0.0.1 (GIP2P_MODEL_MIRROR points the
official URLs at it) serving small stand-in files; no ComfyUI, no network."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from grounded_ip2p.headless import cli, downloads, model_catalog, progress
from grounded_ip2p.headless.model_catalog import ModelFile

REPO = Path(__file__).resolve().parents[1]
HEX64 = re.compile(r"[0-9a-f]{64}")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The stand-in files the local server has (path -> body); "drop" announces more than it sends.
GOOD = b"ip2p-weights" * 300
DET = b"gdino-weights" * 200
CFG = b'backbone = "swin_T_224_1k"\n'
BAD = b"tampered-file" * 100
DROPPED = b"half a file" * 100
BIG = bytes(range(256)) * (3 * 4096 + 7)  # > 1 MiB: several chunks
PRESENT = b"already here" * 50
UNVERIFIED = b"no published size" * 40
SERVED = {
    "/files/te.safetensors": UNVERIFIED,
    "/files/ckpt.safetensors": GOOD,
    "/files/det.pth": DET,
    "/files/det.cfg.py": CFG,
    "/files/wrong.pth": BAD,
    "/files/dropped.pth": DROPPED,
    "/files/big.pth": BIG,
    "/files/present.pth": PRESENT,
}
OFFICIAL = "https://official.invalid/files/"


def entry(name, folder, data, *, sha256=True, needs=(), size=None):
    return ModelFile(
        name,
        folder,
        OFFICIAL + name,
        len(data) if size is None else size,
        sha(data) if sha256 is True else sha256,
        "test",
        needs=needs,
    )


STAND_IN = {
    e.name: e
    for e in (
        entry("ckpt.safetensors", "checkpoints", GOOD),
        entry("det.pth", "grounding-dino", DET, needs=("det.cfg.py",)),
        entry("det.cfg.py", "grounding-dino", CFG, sha256=None),
        entry("wrong.pth", "sams", b"the-real-file" * 100),  # same size as BAD, other bytes
        entry("dropped.pth", "sams", DROPPED, size=len(DROPPED) + 1000, sha256=None),
        entry("gone.pth", "clip_filter", b"never served"),
        entry("big.pth", "sams", BIG),
        entry("present.pth", "sams", PRESENT),
        ModelFile("te.safetensors", "text_encoders", OFFICIAL + "te.safetensors", None, None, "test"),
    )
}


class Handler(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        Handler.requests.append(self.path)
        body = SERVED.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        dropped = self.path.endswith("dropped.pth")
        self.send_header("Content-Length", str(len(body) + (1000 if dropped else 0)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if dropped:
            self.close_connection = True  # the connection ends 1000 bytes short

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def env(tmp_path, monkeypatch, server):
    """A ComfyUI-like folder, a workflows folder, the stand-in catalog and the local mirror."""
    comfy = tmp_path / "ComfyUI"
    (comfy / "models" / "checkpoints").mkdir(parents=True)
    (comfy / "main.py").write_text("# ComfyUI\n")
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    monkeypatch.setattr(model_catalog, "CATALOG", STAND_IN)
    monkeypatch.setenv(downloads.MIRROR_ENV, server)
    monkeypatch.delenv("COMFYUI_PATH", raising=False)
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "*")
    Handler.requests.clear()
    return comfy, workflows


def node(id, type, widgets, mode=0):
    return {"id": id, "type": type, "mode": mode, "inputs": [], "outputs": [], "widgets_values": widgets}


def write_workflow(directory: Path, name: str, loaders: list[tuple[str, str] | tuple[str, str, int]]):
    nodes = [node(i + 1, t, [value, "auto"], *rest) for i, (t, value, *rest) in enumerate(loaders)]
    nodes.append(node(99, "Note", ["Model: models/checkpoints/ckpt.safetensors"]))
    (directory / f"{name}.json").write_text(json.dumps({"nodes": nodes, "links": []}))


def models(comfy, workflows, *args):
    return cli.main(["models", "--comfyui", str(comfy), "--workflows-dir", str(workflows), *args])


def no_part_files(root: Path):
    return not list(root.rglob("*.part"))


def test_listing_present_missing_and_not_in_catalog(env, capsys):
    comfy, workflows = env
    (comfy / "models" / "sams" / "sub").mkdir(parents=True)
    (comfy / "models" / "sams" / "sub" / "present.pth").write_bytes(PRESENT)  # found in a subfolder
    write_workflow(
        workflows,
        "edit",
        [
            ("CheckpointLoaderSimple", "ckpt.safetensors"),
            ("GroundedIP2P_GroundingDINOLoader", "det.pth"),
            ("GroundedIP2P_SAMLoader", "present.pth"),
            ("GroundedIP2P_ClipFilterLoader", "my_own_clip.safetensors"),
            ("GroundedIP2P_SAMLoader", "muted.pth", 2),  # a muted loader needs nothing
        ],
    )
    code = models(comfy, workflows)
    out = capsys.readouterr().out
    assert code == 1
    assert f"models folder: {(comfy / 'models').resolve()} (--comfyui)" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and "  " in line.strip()}
    assert re.search(r"checkpoints\s+missing\s", rows["ckpt.safetensors"])
    assert re.search(r"grounding-dino\s+missing\s", rows["det.pth"])
    assert "beside det.pth" in rows["det.cfg.py"]
    assert re.search(r"sams\s+present\s", rows["present.pth"])
    assert re.search(r"clip_filter\s+missing \(not in the catalog\)", rows["my_own_clip.safetensors"])
    assert "not in the catalog: put it in models/clip_filter yourself" in out
    assert "muted.pth" not in out
    assert not Handler.requests  # listing never touches the network


def test_json_structure(env, capsys):
    comfy, workflows = env
    (comfy / "models" / "sams").mkdir(parents=True)
    (comfy / "models" / "sams" / "present.pth").write_bytes(PRESENT)
    write_workflow(workflows, "a", [("GroundedIP2P_SAMLoader", "present.pth")])
    write_workflow(
        workflows,
        "b",
        [("GroundedIP2P_GroundingDINOLoader", "det.pth"), ("CheckpointLoaderSimple", "mine.safetensors")],
    )
    assert models(comfy, workflows, "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"models_dir", "models_dir_origin", "ok", "workflows"}
    assert data["ok"] is False and data["models_dir"] == str((comfy / "models").resolve())
    assert [w["workflow"] for w in data["workflows"]] == ["a.json", "b.json"]
    keys = {
        "name",
        "folder",
        "in_catalog",
        "required_by",
        "status",
        "path",
        "expected_size",
        "size",
        "expected_sha256",
        "sha256",
        "url",
        "note",
    }
    files = {f["name"]: f for w in data["workflows"] for f in w["files"]}
    assert all(set(f) == keys for f in files.values())
    assert files["present.pth"]["status"] == "present" and files["present.pth"]["size"] == len(PRESENT)
    assert files["present.pth"]["path"] == str(comfy / "models" / "sams" / "present.pth")
    assert files["present.pth"]["sha256"] is None  # not hashed without --verify
    assert files["det.pth"]["status"] == "missing" and files["det.pth"]["url"] == OFFICIAL + "det.pth"
    assert files["det.cfg.py"]["required_by"] == "det.pth"
    assert files["mine.safetensors"]["in_catalog"] is False and files["mine.safetensors"]["url"] is None


def test_download_verifies_and_leaves_no_part(env, capsys):
    comfy, workflows = env
    write_workflow(
        workflows,
        "edit",
        [("CheckpointLoaderSimple", "ckpt.safetensors"), ("GroundedIP2P_GroundingDINOLoader", "det.pth")],
    )
    assert models(comfy, workflows, "--download", "--json") == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    files = {f["name"]: f for f in data["workflows"][0]["files"]}
    assert data["ok"] and {f["status"] for f in files.values()} == {"downloaded"}
    assert files["ckpt.safetensors"]["sha256"] == sha(GOOD) and files["ckpt.safetensors"]["note"] == "sha256 verified"
    assert files["det.cfg.py"]["note"] == "sha256 unknown: verified by size only"
    assert (comfy / "models" / "checkpoints" / "ckpt.safetensors").read_bytes() == GOOD
    assert (comfy / "models" / "grounding-dino" / "det.pth").read_bytes() == DET
    assert (comfy / "models" / "grounding-dino" / "det.cfg.py").read_bytes() == CFG  # beside its .pth
    assert no_part_files(comfy)
    assert "downloading ckpt.safetensors" in captured.err  # progress goes to stderr
    assert sorted(Handler.requests) == ["/files/ckpt.safetensors", "/files/det.cfg.py", "/files/det.pth"]

    # Everything is there now: nothing is fetched again.
    Handler.requests.clear()
    assert models(comfy, workflows, "--download") == 0
    out = capsys.readouterr().out
    assert "sha256 unknown: verified by size only" in out and not Handler.requests


def test_wrong_checksum_keeps_nothing(env, capsys):
    comfy, workflows = env
    write_workflow(workflows, "edit", [("GroundedIP2P_SAMLoader", "wrong.pth")])
    assert models(comfy, workflows, "--download") == 1
    captured = capsys.readouterr()
    assert not (comfy / "models" / "sams" / "wrong.pth").exists() and no_part_files(comfy)
    message = next(line for line in captured.err.splitlines() if "checksum mismatch" in line)
    assert "wrong.pth" in message and STAND_IN["wrong.pth"].sha256 in message and sha(BAD) in message
    assert re.search(r"wrong\.pth\s+sams\s+failed", captured.out)


def test_dropped_connection_keeps_nothing(env, capsys):
    comfy, workflows = env
    write_workflow(workflows, "edit", [("GroundedIP2P_SAMLoader", "dropped.pth")])
    assert models(comfy, workflows, "--download") == 1
    err = capsys.readouterr().err
    assert not (comfy / "models" / "sams" / "dropped.pth").exists() and no_part_files(comfy)
    assert (
        f"could not download dropped.pth: the connection closed after {len(DROPPED)} of {len(DROPPED) + 1000} bytes"
        in err
    )


def test_404_is_a_clear_failure(env, capsys):
    comfy, workflows = env
    write_workflow(workflows, "edit", [("GroundedIP2P_ClipFilterLoader", "gone.pth")])
    assert models(comfy, workflows, "--download") == 1
    err = capsys.readouterr().err
    assert re.search(r"could not download gone\.pth: http://127\.0\.0\.1:\d+/files/gone\.pth answered HTTP 404", err)
    assert not list((comfy / "models").rglob("gone.pth*"))


def test_interrupt_removes_the_part_file(env, capsys, monkeypatch):
    comfy, workflows = env
    write_workflow(workflows, "edit", [("GroundedIP2P_SAMLoader", "big.pth")])
    seen = []

    def ctrl_c(self, done):
        seen.append(done)
        assert (comfy / "models" / "sams" / "big.pth.part").is_file()  # written beside the target
        raise KeyboardInterrupt

    monkeypatch.setattr(progress.ProgressBar, "update", ctrl_c)
    assert models(comfy, workflows, "--download") == model_catalog.EXIT_INTERRUPTED
    assert seen and "interrupted" in capsys.readouterr().err
    assert not (comfy / "models" / "sams" / "big.pth").exists() and no_part_files(comfy)


def test_present_file_is_not_downloaded_again_and_verify_hashes(env, capsys):
    comfy, workflows = env
    sams = comfy / "models" / "sams"
    sams.mkdir(parents=True)
    (sams / "present.pth").write_bytes(PRESENT)
    (sams / "wrong.pth").write_bytes(BAD)  # right size, wrong bytes
    write_workflow(
        workflows, "edit", [("GroundedIP2P_SAMLoader", "present.pth"), ("GroundedIP2P_SAMLoader", "wrong.pth")]
    )
    assert models(comfy, workflows, "--download") == 0  # by name both are there
    assert not Handler.requests
    capsys.readouterr()
    assert models(comfy, workflows, "--verify", "--json") == 1
    files = {f["name"]: f for f in json.loads(capsys.readouterr().out)["workflows"][0]["files"]}
    assert files["present.pth"]["status"] == "present" and files["present.pth"]["sha256"] == sha(PRESENT)
    assert files["wrong.pth"]["status"] == "wrong checksum" and files["wrong.pth"]["sha256"] == sha(BAD)
    assert not Handler.requests
    # --verify --download replaces it, only once the new file checked out (here it cannot: the
    # mirror serves the bad bytes), so the old file stays.
    assert models(comfy, workflows, "--verify", "--download") == 1
    assert (sams / "wrong.pth").read_bytes() == BAD and no_part_files(comfy)
    assert Handler.requests == ["/files/wrong.pth"]


def test_finding_the_models_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("COMFYUI_PATH", raising=False)
    comfy = tmp_path / "ComfyUI"
    pack = comfy / "custom_nodes" / "grounded-ip2p"
    pack.mkdir(parents=True)
    (comfy / "models").mkdir()
    (comfy / "main.py").write_text("")
    models_dir = (comfy / "models").resolve()
    find = model_catalog.find_models_dir
    assert find(start=pack) == (models_dir, f"found above the pack ({comfy.resolve()})")
    assert find(comfyui=str(comfy), start=tmp_path) == (models_dir, "--comfyui")
    assert find(models_dir=str(comfy / "models"), start=tmp_path) == (models_dir, "--models-dir")
    monkeypatch.setenv("COMFYUI_PATH", str(comfy))
    assert find(start=tmp_path) == (models_dir, "COMFYUI_PATH")
    monkeypatch.setenv("COMFYUI_PATH", str(tmp_path))
    with pytest.raises(model_catalog.ModelsError, match="COMFYUI_PATH .*not a ComfyUI folder"):
        find(start=pack)
    monkeypatch.delenv("COMFYUI_PATH")
    with pytest.raises(model_catalog.ModelsError, match="cannot find ComfyUI's models folder"):
        find(start=tmp_path)

    # The command: none found -> one line on stderr, exit 2.
    monkeypatch.setattr(model_catalog, "PACK_DIR", tmp_path)
    assert cli.main(["models"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--comfyui PATH" in err
    assert cli.main(["models", "--models-dir", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_usage_errors(env, capsys, monkeypatch):
    comfy, workflows = env
    write_workflow(workflows, "edit", [("CheckpointLoaderSimple", "ckpt.safetensors")])
    assert models(comfy, workflows, "--workflow", "nope") == 2
    assert "no workflow named 'nope'" in capsys.readouterr().err
    assert models(comfy, workflows, "--workflow", "edit.json") == 1  # found, file missing
    capsys.readouterr()
    (workflows / "broken.json").write_text("{not json")
    assert models(comfy, workflows, "--workflow", "broken") == 2
    assert "cannot read workflow" in capsys.readouterr().err
    monkeypatch.setenv(downloads.MIRROR_ENV, "ftp:/nowhere")
    assert models(comfy, workflows, "--workflow", "edit", "--download") == 2
    assert "GIP2P_MODEL_MIRROR" in capsys.readouterr().err and not Handler.requests


def test_mirror_replaces_scheme_and_host_only():
    e = model_catalog.CATALOG["sam_vit_b_01ec64.pth"]
    assert downloads.download_url(e.url, "") == e.url
    assert (
        downloads.download_url(e.url, "http://127.0.0.1:8000/mirror/")
        == "http://127.0.0.1:8000/mirror/segment_anything/sam_vit_b_01ec64.pth"
    )


def test_real_catalog_is_well_formed():
    catalog = model_catalog.CATALOG
    expected = {
        "instruct-pix2pix-00-22000.safetensors",
        "groundingdino_swint_ogc.pth",
        "GroundingDINO_SwinT_OGC.cfg.py",
        "groundingdino_swinb_cogcoor.pth",
        "GroundingDINO_SwinB.cfg.py",
        "sam_vit_h_4b8939.pth",
        "sam_vit_l_0b3195.pth",
        "sam_vit_b_01ec64.pth",
        "ViT-L-14.pt",
        *EDIT_MODEL_FILES,
        *SEGMENTER_FILES,
        *GROUNDER_FOLDER_FILES,
    }
    assert set(catalog) == expected
    assert len(model_catalog._ENTRIES) == len(catalog)  # each file once
    for name, e in catalog.items():
        assert e.name == name and e.url.startswith("https://") and e.url.rsplit("/", 1)[-1] == e.file_name
        assert e.folder in model_catalog.FOLDERS
        assert e.sha256 is None or HEX64.fullmatch(e.sha256), name
        assert e.size is None or (isinstance(e.size, int) and e.size > 0), name
        assert e.source
        for companion in e.needs:
            assert catalog[companion].folder == e.folder
    # OpenAI's URL names the file's sha256.
    clip = catalog["ViT-L-14.pt"]
    assert clip.url.split("/")[-2] == clip.sha256
    assert catalog["groundingdino_swint_ogc.pth"].needs == ("GroundingDINO_SwinT_OGC.cfg.py",)
    assert catalog["groundingdino_swinb_cogcoor.pth"].needs == ("GroundingDINO_SwinB.cfg.py",)


# The edit models' files: where they go, and the URL ComfyUI's own templates give for each.
EDIT_MODEL_FILES = {
    "qwen_image_edit_2511_bf16.safetensors": (
        "diffusion_models",
        (
            "https://huggingface.co/Comfy-Org/Qwen-Image-Edit_ComfyUI/resolve/main/split_files/diffusion_models/"
            "qwen_image_edit_2511_bf16.safetensors"
        ),
    ),
    "qwen_2.5_vl_7b_fp8_scaled.safetensors": (
        "text_encoders",
        (
            "https://huggingface.co/Comfy-Org/HunyuanVideo_1.5_repackaged/resolve/main/split_files/text_encoders/"
            "qwen_2.5_vl_7b_fp8_scaled.safetensors"
        ),
    ),
    "qwen_image_vae.safetensors": (
        "vae",
        "https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/vae/qwen_image_vae.safetensors",
    ),
    "flux1-dev-kontext_fp8_scaled.safetensors": (
        "diffusion_models",
        (
            "https://huggingface.co/Comfy-Org/flux1-kontext-dev_ComfyUI/resolve/main/split_files/diffusion_models/"
            "flux1-dev-kontext_fp8_scaled.safetensors"
        ),
    ),
    "clip_l.safetensors": (
        "text_encoders",
        "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/clip_l.safetensors",
    ),
    "t5xxl_fp8_e4m3fn_scaled.safetensors": (
        "text_encoders",
        "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/t5xxl_fp8_e4m3fn_scaled.safetensors",
    ),
    "ae.safetensors": (
        "vae",
        "https://huggingface.co/Comfy-Org/Lumina_Image_2.0_Repackaged/resolve/main/split_files/vae/ae.safetensors",
    ),
    "cosxl_edit.safetensors": (
        "checkpoints",
        "https://huggingface.co/stabilityai/cosxl/resolve/main/cosxl_edit.safetensors",
    ),
}
GROUNDING_FILES = [
    ("groundingdino_swint_ogc.pth", "grounding-dino"),
    ("GroundingDINO_SwinT_OGC.cfg.py", "grounding-dino"),
    ("ViT-L-14.pt", "clip_filter"),
    ("sam_vit_h_4b8939.pth", "sams"),
]
EDIT_WORKFLOWS = {
    "grounded_qwen_image_edit": [
        "qwen_image_edit_2511_bf16.safetensors",
        "qwen_2.5_vl_7b_fp8_scaled.safetensors",
        "qwen_image_vae.safetensors",
    ],
    "grounded_flux_kontext": [
        "flux1-dev-kontext_fp8_scaled.safetensors",
        "clip_l.safetensors",
        "t5xxl_fp8_e4m3fn_scaled.safetensors",
        "ae.safetensors",
    ],
    "grounded_cosxl_edit": ["cosxl_edit.safetensors"],
}


# The Hugging Face folders Load GroundingDINO takes, file by file.
MM_GDINO = "mm_grounding_dino_tiny_o365v1_goldg_v3det"
OWLV2 = "owlv2-base-patch16-ensemble"
OWLV2_FILES = ("model.safetensors", "config.json", "preprocessor_config.json", "tokenizer.json")
OWLV2_FILES += ("tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt")
GROUNDER_FOLDER_FILES = {
    *(f"{MM_GDINO}/{name}" for name in ("model.safetensors", "config.json")),
    *(f"{OWLV2}/{name}" for name in OWLV2_FILES),
}


# The other segmenter files Load SAM takes, and the folder each goes to.
SEGMENTER_FILES = {
    **{f"sam_hq_vit_{size}.pth": "sams" for size in ("h", "l", "b", "tiny")},
    "mobile_sam.pt": "sams",
    **{f"{v}_hiera_{size}.pt": "sam2" for v in ("sam2", "sam2.1") for size in ("tiny", "small", "base_plus", "large")},
}


def test_segmenter_entries():
    for name, folder in SEGMENTER_FILES.items():
        e = model_catalog.CATALOG[name]
        assert (e.folder, e.size, e.sha256) == (folder, None, None), name
    assert model_catalog.CATALOG["sam2.1_hiera_large.pt"].url == (
        "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_large.pt"
    )
    assert model_catalog.CATALOG["sam2_hiera_tiny.pt"].url == (
        "https://dl.fbaipublicfiles.com/segment_anything_2/072824/sam2_hiera_tiny.pt"
    )


def test_load_sam_files_are_found_in_models_sam2_and_go_there(tmp_path):
    """Load SAM names its file in models/sams' list, which also holds models/sam2: a SAM 2 file is
    found in either, and a missing one is downloaded into models/sam2, where SAM 2 packs look."""
    workflow = {
        "nodes": [
            {"type": "GroundedIP2P_SAMLoader", "widgets_values": ["sam2.1_hiera_large.pt", "auto"]},
            {"type": "GroundedIP2P_SAMLoader", "widgets_values": ["sam2_hiera_small.pt", "auto"]},
            {"type": "GroundedIP2P_SAMLoader", "widgets_values": ["mobile_sam.pt", "auto"]},
        ]
    }
    needs = model_catalog.workflow_needs(workflow)
    assert [(n.name, n.folder) for n in needs] == [
        ("sam2.1_hiera_large.pt", "sams"),
        ("sam2_hiera_small.pt", "sams"),
        ("mobile_sam.pt", "sams"),
    ]
    (tmp_path / "sam2").mkdir()
    (tmp_path / "sam2" / "sam2.1_hiera_large.pt").write_bytes(PRESENT)
    large, small, mobile = (model_catalog.check(n, tmp_path, {}) for n in needs)
    assert large.status == "present" and large.path == tmp_path / "sam2" / "sam2.1_hiera_large.pt"
    assert large.entry is model_catalog.CATALOG["sam2.1_hiera_large.pt"]
    assert small.status != "present" and small.target == tmp_path / "sam2" / "sam2_hiera_small.pt"
    assert mobile.target == tmp_path / "sams" / "mobile_sam.pt" and mobile.entry is not None


def test_edit_model_entries():
    """Official URLs and folders; no size or sha256 was published where it could be read, so none is
    claimed (a download is then checked against the announced length only)."""
    for name, (folder, url) in EDIT_MODEL_FILES.items():
        e = model_catalog.CATALOG[name]
        assert (e.folder, e.url, e.size, e.sha256) == (folder, url, None, None), name
        assert model_catalog._unverified_note(e) == "sha256 and size unknown: not verified"
    assert "gated" in model_catalog.CATALOG["cosxl_edit.safetensors"].source


def test_loaders_cover_the_core_model_loaders():
    loaders = model_catalog.LOADERS
    assert loaders["UNETLoader"] == ((0, "diffusion_models", "unet_name"),)
    assert loaders["CLIPLoader"] == ((0, "text_encoders", "clip_name"),)
    assert loaders["DualCLIPLoader"] == ((0, "text_encoders", "clip_name1"), (1, "text_encoders", "clip_name2"))
    assert loaders["VAELoader"] == ((0, "vae", "vae_name"),)
    assert loaders["CheckpointLoaderSimple"] == ((0, "checkpoints", "ckpt_name"),)
    assert {"diffusion_models", "text_encoders", "vae", "checkpoints"} <= set(model_catalog.FOLDERS)
    # both names of a DualCLIPLoader, list or dict widgets; one need per file however often it is named
    workflow = {
        "nodes": [
            node(1, "DualCLIPLoader", ["a.safetensors", "b.safetensors", "flux", "default"]),
            {
                "id": 2,
                "type": "DualCLIPLoader",
                "mode": 0,
                "widgets_values": {"clip_name1": "b.safetensors", "clip_name2": "c.safetensors", "type": "flux"},
            },
            node(3, "UNETLoader", ["u.safetensors", "default"]),
            node(4, "VAELoader", ["v.safetensors"], mode=4),  # bypassed
        ]
    }
    needs = [(n.name, n.folder) for n in model_catalog.workflow_needs(workflow)]
    assert needs == [
        ("a.safetensors", "text_encoders"),
        ("b.safetensors", "text_encoders"),
        ("c.safetensors", "text_encoders"),
        ("u.safetensors", "diffusion_models"),
    ]


@pytest.mark.parametrize("workflow", sorted(EDIT_WORKFLOWS))
def test_edit_model_workflow_lists_its_files(workflow, tmp_path, monkeypatch, capsys):
    """`grounded-ip2p models --workflow NAME` on the real example: the grounding models and the edit
    model's files, each once, in their folders; files in ComfyUI's old folder names count."""
    monkeypatch.delenv("COMFYUI_PATH", raising=False)
    comfy = tmp_path / "ComfyUI"
    (comfy / "models" / "unet").mkdir(parents=True)
    (comfy / "models" / "clip").mkdir()
    (comfy / "main.py").write_text("")
    for name in EDIT_WORKFLOWS[workflow]:
        legacy = {"diffusion_models": "unet", "text_encoders": "clip"}.get(EDIT_MODEL_FILES[name][0])
        if legacy:
            (comfy / "models" / legacy / name).write_bytes(b"weights")
    assert cli.main(["models", "--comfyui", str(comfy), "--workflow", workflow, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    files = data["workflows"][0]["files"]
    assert [(f["name"], f["folder"]) for f in files] == (
        GROUNDING_FILES + [(name, EDIT_MODEL_FILES[name][0]) for name in EDIT_WORKFLOWS[workflow]]
    )
    for f in files[len(GROUNDING_FILES) :]:
        assert f["in_catalog"] and f["url"] == EDIT_MODEL_FILES[f["name"]][1]
        legacy = {"diffusion_models": "unet", "text_encoders": "clip"}.get(f["folder"])
        if legacy:
            assert f["status"] == "present" and f["path"] == str(comfy / "models" / legacy / f["name"])
            assert f["note"] == "sha256 and size unknown: not verified"
        else:
            assert f["status"] == "missing" and f["path"] is None


def test_unverified_file_downloads_into_its_folder(env, capsys):
    comfy, workflows = env
    (workflows / "edit.json").write_text(
        json.dumps({"nodes": [node(1, "CLIPLoader", ["te.safetensors", "qwen_image"])], "links": []})
    )
    assert models(comfy, workflows, "--download", "--json") == 0
    files = json.loads(capsys.readouterr().out)["workflows"][0]["files"]
    assert [(f["name"], f["status"], f["note"]) for f in files] == [
        ("te.safetensors", "downloaded", "sha256 and size unknown: not verified")
    ]
    assert (comfy / "models" / "text_encoders" / "te.safetensors").read_bytes() == UNVERIFIED
    assert no_part_files(comfy)


EXAMPLES = sorted((REPO / "example_workflows").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_model_of_the_example_workflows_is_in_the_catalog(path):
    needs = model_catalog.read_workflow(path)
    assert needs, f"{path.name} names no model file"
    for need in needs:
        assert model_catalog.catalog_entry(need.name, need.folder) is not None, (need.name, need.folder)


NETWORK_MODULES = {"urllib", "urllib3", "requests", "http", "httpx", "aiohttp"}


def test_only_the_model_command_touches_the_network():
    offenders = []
    for package in ("grounding", "sampling", "nodes"):
        for file in sorted((REPO / package).rglob("*.py")):
            for n in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                names = (
                    [a.name for a in n.names]
                    if isinstance(n, ast.Import)
                    else [n.module or ""]
                    if isinstance(n, ast.ImportFrom) and not n.level
                    else []
                )
                offenders += [f"{file.relative_to(REPO)}: {m}" for m in names if m.split(".")[0] in NETWORK_MODULES]
    assert not offenders


def test_cli_imports_the_catalog_only_for_the_models_command():
    code = (
        "import sys, grounded_ip2p.headless.cli as c; c.build_parser();"
        "assert 'grounded_ip2p.headless.model_catalog' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_hugging_face_folders_are_found_and_fetched_whole(tmp_path):
    """A Hugging Face folder is named as the loader lists it (<folder>/model.safetensors): its other
    files are looked for beside it and fetched into it, and another folder's model.safetensors is
    not taken for it."""
    owl = model_catalog.CATALOG[f"{OWLV2}/model.safetensors"]
    assert owl.folder == "grounding-dino" and owl.url == (
        "https://huggingface.co/google/owlv2-base-patch16-ensemble/resolve/main/model.safetensors"
    )
    assert owl.needs == tuple(f"{OWLV2}/{name}" for name in OWLV2_FILES[1:])
    workflow = {
        "nodes": [
            {"type": "GroundedIP2P_GroundingDINOLoader", "widgets_values": [f"{OWLV2}/model.safetensors", "auto"]},
            {"type": "GroundedIP2P_GroundingDINOLoader", "widgets_values": [f"{MM_GDINO}/model.safetensors", "auto"]},
        ]
    }
    needs = model_catalog.workflow_needs(workflow)
    assert [n.name for n in needs] == [
        f"{OWLV2}/model.safetensors",
        *owl.needs,
        f"{MM_GDINO}/model.safetensors",
        f"{MM_GDINO}/config.json",
    ]
    folder = tmp_path / "grounding-dino" / "detectors" / OWLV2  # one level deeper than the catalog puts it
    folder.mkdir(parents=True)
    for name in ("model.safetensors", "config.json"):
        (folder / name).write_bytes(PRESENT)
    main_paths: dict = {}
    states = [model_catalog.check(n, tmp_path, main_paths) for n in needs]
    by_name = {s.name: s for s in states}
    assert by_name[f"{OWLV2}/model.safetensors"].path == folder / "model.safetensors"
    assert by_name[f"{OWLV2}/model.safetensors"].note == model_catalog._unverified_note(owl)
    assert by_name[f"{OWLV2}/config.json"].path == folder / "config.json"
    assert by_name[f"{OWLV2}/vocab.json"].status == "missing"
    assert by_name[f"{OWLV2}/vocab.json"].target == folder / "vocab.json"
    mm = by_name[f"{MM_GDINO}/model.safetensors"]  # the OWLv2 folder's weights are not MM-GDINO's
    assert mm.status == "missing" and mm.target == tmp_path / "grounding-dino" / MM_GDINO / "model.safetensors"
    assert model_catalog.catalog_entry("model.safetensors", "grounding-dino") is None
