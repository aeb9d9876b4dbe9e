"""The model files the example workflows need: where they go, whether they are there, and (only
when asked) fetching them. Behind `grounded-ip2p models`:

    grounded-ip2p models                         # a table per example workflow
    grounded-ip2p models --json                  # the same, as one JSON object
    grounded-ip2p models --verify                # also sha256 every file found (slow: GBs)
    grounded-ip2p models --download              # fetch the missing catalog files
    grounded-ip2p models --workflow grounded_edit --comfyui ~/ComfyUI
    grounded-ip2p models --models-dir /data/ComfyUI/models --workflow my_workflow.json

Fetching (only under `--download`) is downloads.py's. Finding ComfyUI's models folder (no ComfyUI
import): `--models-dir`, else `--comfyui` (the folder with main.py), else `$COMFYUI_PATH`, else the
first folder above the pack (which lives in `ComfyUI/custom_nodes/<pack>`) that holds `main.py`.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..grounding.model_folders import LOADERS as PACK_LOADERS
from . import comfy_session
from .downloads import DownloadError, check_mirror, download, sha256_of
from .progress import human_size

PACK_DIR = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = PACK_DIR / "example_workflows"

EXIT_OK, EXIT_MISSING, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass(frozen=True)
class ModelFile:
    """One downloadable file. `size` in bytes and `sha256` as published (None: no published value
    was found; the file is then checked by size only). `needs`: files that must lie beside it.
    `aliases`: other names the pack also accepts for this file when it is needed beside another.
    A file of a Hugging Face folder is named by its path in the model folder
    ("<repository>/model.safetensors", as the loader lists it) and found only under that path."""

    name: str
    folder: str
    url: str
    size: int | None
    sha256: str | None
    source: str
    needs: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def in_hf_folder(self) -> bool:
        return "/" in self.name

    @property
    def file_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]


def _hf_folder(repository: str, files: tuple[str, ...], source: str) -> tuple[ModelFile, ...]:
    """The catalog entries of a Hugging Face folder: its first file (what the loader lists) needs
    the others beside it."""
    folder = repository.rsplit("/", 1)[-1]
    names = [f"{folder}/{name}" for name in files]
    url = f"https://huggingface.co/{repository}/resolve/main/"
    return tuple(
        ModelFile(name, "grounding-dino", url + file, None, None, source, needs=tuple(names[1:]) if i == 0 else ())
        for i, (name, file) in enumerate(zip(names, files))
    )


_QWEN_TEMPLATE = "Comfy-Org/workflow_templates templates/image_qwen_image_edit_2511.json (URL and folder)"
_KONTEXT_TEMPLATE = "Comfy-Org/workflow_templates templates/flux_kontext_dev_basic.json (URL and folder)"

# Each size and sha256 below was read in the source named in `source`; none is computed or guessed.
_ENTRIES = (
    ModelFile(
        "instruct-pix2pix-00-22000.safetensors",
        "checkpoints",
        "https://huggingface.co/timbrooks/instruct-pix2pix/resolve/main/instruct-pix2pix-00-22000.safetensors",
        7703416451,
        "fbc31a67aab29ad38eef622a252d3fa4b0a81d4a4dc65da416cf45b13aa67688",
        # Git LFS pointer (oid sha256 + size) of the file in the official repository:
        "https://huggingface.co/timbrooks/instruct-pix2pix/blame/main/instruct-pix2pix-00-22000.safetensors",
    ),
    ModelFile(
        "groundingdino_swint_ogc.pth",
        "grounding-dino",
        "https://huggingface.co/ShilongLiu/GroundingDINO/resolve/main/groundingdino_swint_ogc.pth",
        693997677,
        "3b3ca2563c77c69f651d7bd133e97139c186df06231157a64c507099c52bc799",
        # LFS pointer in the commit that uploaded it to the official repository:
        "https://huggingface.co/ShilongLiu/GroundingDINO/commit/84311ae61139581d0e62eca0bad610ad14e70aef",
        needs=("GroundingDINO_SwinT_OGC.cfg.py",),
    ),
    ModelFile(
        "GroundingDINO_SwinT_OGC.cfg.py",
        "grounding-dino",
        "https://huggingface.co/ShilongLiu/GroundingDINO/resolve/main/GroundingDINO_SwinT_OGC.cfg.py",
        # A small text file (not in LFS): no sha256 is published for it. Size: the byte count Hugging
        # Face shows for a copy whose text is identical to the official file's
        # (https://huggingface.co/fofr/comfyui/blame/main/grounding-dino/GroundingDINO_SwinT_OGC.cfg.py,
        # "File size: 1,006 Bytes"; the official page only says 1.01 kB).
        1006,
        None,
        "https://huggingface.co/fofr/comfyui/blame/main/grounding-dino/GroundingDINO_SwinT_OGC.cfg.py (size)",
        aliases=("GroundingDINO_SwinT_OGC.py",),
    ),
    ModelFile(
        "groundingdino_swinb_cogcoor.pth",
        "grounding-dino",
        "https://huggingface.co/ShilongLiu/GroundingDINO/resolve/main/groundingdino_swinb_cogcoor.pth",
        938057991,
        "46270f7a822e6906b655b729c90613e48929d0f2bb8b9b76fd10a856f3ac6ab7",
        "https://huggingface.co/ShilongLiu/GroundingDINO/commit/81ca292d6957b64598c0927d23f9ca399900e170",
        needs=("GroundingDINO_SwinB.cfg.py",),
    ),
    ModelFile(
        "GroundingDINO_SwinB.cfg.py",
        "grounding-dino",
        "https://huggingface.co/ShilongLiu/GroundingDINO/resolve/main/GroundingDINO_SwinB.cfg.py",
        # No sha256 published (not in LFS); size as the official blame page shows it.
        1007,
        None,
        "https://huggingface.co/ShilongLiu/GroundingDINO/blame/main/GroundingDINO_SwinB.cfg.py (size)",
        aliases=("GroundingDINO_SwinB_cfg.py",),
    ),
    # Hugging Face folders Load GroundingDINO takes, kept whole in models/grounding-dino/<repository>:
    # the files the pack reads (MM-Grounding-DINO uses the BERT vocabulary the pack ships). URLs as
    # the official repositories serve them; no size or sha256 could be read from here, so a
    # download is only checked against the length the server announces.
    *_hf_folder(
        "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det",
        ("model.safetensors", "config.json"),
        "huggingface.co/docs/transformers model_doc/mm-grounding-dino (the repository its example loads)",
    ),
    *_hf_folder(
        "google/owlv2-base-patch16-ensemble",
        (
            "model.safetensors",
            "config.json",
            "preprocessor_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "vocab.json",
            "merges.txt",
        ),
        "huggingface.co/docs/transformers model_doc/owlv2 (the repository its example loads)",
    ),
    # SAM: sha256 from micro-sam's model registry (computational-cell-analytics/micro-sam,
    # micro_sam/util.py, which downloads these URLs and checks them with pooch); sizes from the
    # LFS pointers of a copy with the same sha256
    # (https://huggingface.co/mashb1t/misc/commit/78e181357bf2e286bf2e76635c0b5cd89583c5d9).
    ModelFile(
        "sam_vit_h_4b8939.pth",
        "sams",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
        2564550879,
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        "micro-sam micro_sam/util.py (sha256); huggingface.co/mashb1t/misc commit 78e1813 (size)",
    ),
    ModelFile(
        "sam_vit_l_0b3195.pth",
        "sams",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
        1249524607,
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        "micro-sam micro_sam/util.py (sha256); huggingface.co/mashb1t/misc commit 78e1813 (size)",
    ),
    ModelFile(
        "sam_vit_b_01ec64.pth",
        "sams",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
        375042383,
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        "micro-sam micro_sam/util.py (sha256); huggingface.co/mashb1t/misc commit 78e1813 (size)",
    ),
    # The other segmenters Load SAM takes. Official URLs as each project's README gives them; no
    # size or sha256 published by the authors was found, so a download is only checked against the
    # length the server announces.
    *(
        ModelFile(
            f"sam_hq_vit_{size}.pth",
            "sams",
            f"https://huggingface.co/lkeab/hq-sam/resolve/main/sam_hq_vit_{size}.pth",
            None,
            None,
            "SysCV/sam-hq README.md, Model Checkpoints (URL)",
        )
        for size in ("h", "l", "b", "tiny")
    ),
    ModelFile(
        "mobile_sam.pt",
        "sams",
        "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
        None,
        None,
        "ChaoningZhang/MobileSAM weights/mobile_sam.pt (the file in the official repository)",
    ),
    *(
        ModelFile(
            f"{prefix}_hiera_{size}.pt",
            "sam2",
            f"https://dl.fbaipublicfiles.com/segment_anything_2/{release}/{prefix}_hiera_{size}.pt",
            None,
            None,
            "facebookresearch/sam2 checkpoints/download_ckpts.sh (URL)",
        )
        for prefix, release in (("sam2.1", "092824"), ("sam2", "072824"))
        for size in ("tiny", "small", "base_plus", "large")
    ),
    ModelFile(
        "ViT-L-14.pt",
        "clip_filter",
        "https://openaipublic.azureedge.net/clip/models/"
        "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
        # OpenAI's URL path segment is the file's sha256 (openai/CLIP clip/clip.py `_download`
        # checks it: expected_sha256 = url.split("/")[-2]); size from the LFS pointer of a copy
        # with that sha256 (https://huggingface.co/camenduru/SyncDreamer/commit/f28d14c33fce7a5f10e7619554d8932c8b79c4ac).
        932768134,
        "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
        "openai/CLIP clip/clip.py (sha256 = URL segment); huggingface.co/camenduru/SyncDreamer commit f28d14c (size)",
    ),
    # The edit models of the grounded_qwen_image_edit, grounded_flux_kontext and grounded_cosxl_edit
    # workflows: the files (and URLs) ComfyUI's own templates use. No size or sha256 published by
    # the repositories' owners was found (their Hugging Face LFS pointers could not be read from
    # here), so these are not verified: a download is only checked against the length the server
    # announces.
    ModelFile(
        "qwen_image_edit_2511_bf16.safetensors",
        "diffusion_models",
        "https://huggingface.co/Comfy-Org/Qwen-Image-Edit_ComfyUI/resolve/main/split_files/diffusion_models/"
        "qwen_image_edit_2511_bf16.safetensors",
        None,
        None,
        _QWEN_TEMPLATE,
    ),
    ModelFile(
        "qwen_2.5_vl_7b_fp8_scaled.safetensors",
        "text_encoders",
        "https://huggingface.co/Comfy-Org/HunyuanVideo_1.5_repackaged/resolve/main/split_files/text_encoders/"
        "qwen_2.5_vl_7b_fp8_scaled.safetensors",
        None,
        None,
        _QWEN_TEMPLATE,
    ),
    ModelFile(
        "qwen_image_vae.safetensors",
        "vae",
        "https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/vae/qwen_image_vae.safetensors",
        None,
        None,
        _QWEN_TEMPLATE,
    ),
    ModelFile(
        "flux1-dev-kontext_fp8_scaled.safetensors",
        "diffusion_models",
        "https://huggingface.co/Comfy-Org/flux1-kontext-dev_ComfyUI/resolve/main/split_files/diffusion_models/"
        "flux1-dev-kontext_fp8_scaled.safetensors",
        None,
        None,
        _KONTEXT_TEMPLATE,
    ),
    ModelFile(
        "clip_l.safetensors",
        "text_encoders",
        "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/clip_l.safetensors",
        None,
        None,
        _KONTEXT_TEMPLATE,
    ),
    ModelFile(
        "t5xxl_fp8_e4m3fn_scaled.safetensors",
        "text_encoders",
        "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/t5xxl_fp8_e4m3fn_scaled.safetensors",
        None,
        None,
        _KONTEXT_TEMPLATE,
    ),
    ModelFile(
        "ae.safetensors",
        "vae",
        "https://huggingface.co/Comfy-Org/Lumina_Image_2.0_Repackaged/resolve/main/split_files/vae/ae.safetensors",
        None,
        None,
        _KONTEXT_TEMPLATE,
    ),
    ModelFile(
        # A gated repository: its licence has to be accepted on Hugging Face, and the download made
        # while logged in (an anonymous download answers HTTP 401).
        "cosxl_edit.safetensors",
        "checkpoints",
        "https://huggingface.co/stabilityai/cosxl/resolve/main/cosxl_edit.safetensors",
        None,
        None,
        "comfyanonymous/ComfyUI_examples edit_models/README.md (huggingface.co/stabilityai/cosxl, gated; "
        "the workflow in edit_models/sdxl_edit_model.png loads cosxl_edit.safetensors)",
    ),
)
CATALOG: dict[str, ModelFile] = {entry.name: entry for entry in _ENTRIES}

# Loader node type -> its file widgets: (widget index, ComfyUI folder, widget name in a dict form)
LOADERS: dict[str, tuple[tuple[int, str, str], ...]] = {
    "CheckpointLoaderSimple": ((0, "checkpoints", "ckpt_name"),),
    "UNETLoader": ((0, "diffusion_models", "unet_name"),),
    "CLIPLoader": ((0, "text_encoders", "clip_name"),),
    "DualCLIPLoader": ((0, "text_encoders", "clip_name1"), (1, "text_encoders", "clip_name2")),
    "VAELoader": ((0, "vae", "vae_name"),),
    **{loader.node_id: ((0, loader.folder, loader.widget),) for loader in PACK_LOADERS},
}
# The other folders a pack loader lists (Load SAM: models/sam2, where SAM 2 packs keep their
# files): a file there is found, and a catalog file whose folder is one of them goes there.
ALSO_FOLDERS = {loader.folder: loader.also for loader in PACK_LOADERS if loader.also}
FOLDERS = sorted(
    {folder for widgets in LOADERS.values() for _, folder, _ in widgets}
    | {folder for also in ALSO_FOLDERS.values() for folder in also}
)
# ComfyUI also reads these folders under their old names (folder_paths.py: models/unet for
# diffusion_models, models/clip for text_encoders); a file there is found, a download goes to the new one.
LEGACY_FOLDERS = {"diffusion_models": ("unet",), "text_encoders": ("clip",)}


def searched_folders(folder: str) -> tuple[str, ...]:
    """Where a file a loader names in `folder` may lie."""
    return (folder, *LEGACY_FOLDERS.get(folder, ()), *ALSO_FOLDERS.get(folder, ()))


SKIPPED_MODES = {2, 4}  # muted, bypassed: such a loader loads nothing


class ModelsError(Exception):
    """A usage error: exit code 2, one line."""


# ---------------------------------------------------------------------------------------------
# What the workflows need
# ---------------------------------------------------------------------------------------------


@dataclass
class Need:
    name: str  # as the workflow names it (may be a path relative to the folder)
    folder: str
    required_by: str | None = None  # the file this one has to lie beside


def _workflow_nodes(workflow: dict):
    yield from workflow.get("nodes") or ()
    for subgraph in (workflow.get("definitions") or {}).get("subgraphs") or ():
        yield from subgraph.get("nodes") or ()


def _widget(node: dict, index: int, key: str):
    values = node.get("widgets_values")
    if isinstance(values, list):
        return values[index] if index < len(values) else None
    if isinstance(values, dict):
        return values.get(key)
    return None


def catalog_entry(name: str, folder: str) -> ModelFile | None:
    """The catalog entry for a file name used in `folder` (a path's last part counts, except for the
    files of a Hugging Face folder, named by their folder too)."""
    parts = name.replace("\\", "/").split("/")
    entry = CATALOG.get("/".join(parts[-2:])) if len(parts) > 1 else None
    if entry is None or not entry.in_hf_folder:
        entry = CATALOG.get(parts[-1])
    return entry if entry is not None and entry.folder in (folder, *ALSO_FOLDERS.get(folder, ())) else None


def workflow_needs(workflow: dict) -> list[Need]:
    """The model files a UI-format workflow's loaders name, with the files they need beside them."""
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        raise ValueError("not a UI-format workflow (no 'nodes' list)")
    needs: list[Need] = []
    seen = set()

    def add(need: Need):
        key = (need.folder, need.name)
        if key not in seen:
            seen.add(key)
            needs.append(need)

    for node in _workflow_nodes(workflow):
        widgets = LOADERS.get(node.get("type")) if isinstance(node, dict) else None
        if widgets is None or node.get("mode") in SKIPPED_MODES:
            continue
        for index, folder, key in widgets:
            name = _widget(node, index, key)
            if not isinstance(name, str) or not name.strip():
                continue
            add(Need(name, folder))
            entry = catalog_entry(name, folder)
            for companion in entry.needs if entry else ():
                add(Need(companion, folder, required_by=name))
    return needs


def list_workflows(directory: Path, selected: list[str] | None = None) -> list[Path]:
    """The workflows to check: every `*.json` of `directory`, or those `selected` (a name with or
    without `.json`, or a path to a workflow file)."""
    available = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not selected:
        if not available:
            raise ModelsError(f"no workflows (*.json) in {directory}")
        return available
    chosen = []
    for want in selected:
        as_path = Path(want).expanduser()
        if as_path.suffix.lower() == ".json" and as_path.is_file():
            chosen.append(as_path)
            continue
        stem = want[:-5] if want.lower().endswith(".json") else want
        match = [p for p in available if p.stem == stem]
        if not match:
            names = ", ".join(p.stem for p in available) or "none"
            raise ModelsError(f"no workflow named '{want}' in {directory} (there are: {names})")
        chosen.append(match[0])
    return list(dict.fromkeys(chosen))


def read_workflow(path: Path) -> list[Need]:
    try:
        return workflow_needs(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise ModelsError(f"cannot read workflow {path}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Where ComfyUI's models are
# ---------------------------------------------------------------------------------------------


def find_models_dir(
    models_dir: str | None = None, comfyui: str | None = None, start: Path | None = None
) -> tuple[Path, str]:
    """ComfyUI's models folder and how it was found; ModelsError when there is none."""
    if models_dir:
        path = Path(models_dir).expanduser()
        if not path.is_dir():
            raise ModelsError(f"--models-dir {models_dir}: no such folder")
        return path.resolve(), "--models-dir"
    try:
        found = comfy_session.locate_comfyui(comfyui, start or PACK_DIR)
    except comfy_session.ComfyNotFound as exc:
        raise ModelsError(str(exc)) from None
    if found is None:
        raise ModelsError(
            "cannot find ComfyUI's models folder: pass --comfyui PATH (the folder with main.py) "
            "or --models-dir PATH, or set COMFYUI_PATH"
        )
    return (found[0] / "models").resolve(), found[1]


def locate(root: Path, name: str, in_folder: bool = False) -> Path | None:
    """`name` in the folder `root`: the exact relative path, else a file of that name in any
    subfolder (ComfyUI lists folders recursively, links followed); `in_folder`: only in a folder
    named as the name's own (one Hugging Face folder's model.safetensors is not another's)."""
    exact = root / name
    if exact.is_file():
        return exact
    parent, _, base = name.replace("\\", "/").rpartition("/")
    if not root.is_dir():
        return None
    visited = set()
    for directory, dirs, files in os.walk(root, followlinks=True):
        visited.add(os.path.realpath(directory))
        dirs[:] = sorted(d for d in dirs if os.path.realpath(os.path.join(directory, d)) not in visited)
        if in_folder and Path(directory).name != parent.rsplit("/", 1)[-1]:
            continue
        if base in files and os.path.isfile(os.path.join(directory, base)):
            return Path(directory) / base
    return None


def _beside(directory: Path, entry: ModelFile | None, name: str, main: str) -> Path | None:
    """A companion file next to its main file, under any name the pack accepts for it."""
    if not directory.is_dir():
        return None
    stem = Path(main).name.rsplit(".", 1)[0]
    wanted = [name, *(entry.aliases if entry else ()), f"{stem}.cfg.py", f"{stem}.py"]
    present = {p.name.lower(): p for p in directory.iterdir() if p.is_file()}
    return next((present[w.lower()] for w in wanted if w.lower() in present), None)


# ---------------------------------------------------------------------------------------------
# State of each file
# ---------------------------------------------------------------------------------------------


@dataclass
class FileState:
    name: str
    folder: str
    entry: ModelFile | None
    required_by: str | None = None
    path: Path | None = None
    status: str = "missing"  # present | missing | wrong size | wrong checksum | downloaded | failed
    actual_size: int | None = None
    actual_sha256: str | None = None
    note: str | None = None
    target: Path | None = field(default=None, repr=False)  # where a download would go

    @property
    def ok(self) -> bool:
        return self.status in ("present", "downloaded")

    def to_dict(self) -> dict:
        e = self.entry
        return {
            "name": self.name,
            "folder": self.folder,
            "in_catalog": e is not None,
            "required_by": self.required_by,
            "status": self.status,
            "path": str(self.path) if self.path else None,
            "expected_size": e.size if e else None,
            "size": self.actual_size,
            "expected_sha256": e.sha256 if e else None,
            "sha256": self.actual_sha256,
            "url": e.url if e else None,
            "note": self.note,
        }


def _unverified_note(entry: ModelFile) -> str | None:
    if entry.sha256 is None:
        return (
            "sha256 unknown: verified by size only"
            if entry.size is not None
            else "sha256 and size unknown: not verified"
        )
    return None


def check(need: Need, models_dir: Path, main_paths: dict) -> FileState:
    """Where a needed file is (no hashing)."""
    root = models_dir / need.folder
    entry = catalog_entry(need.name, need.folder)
    state = FileState(need.name, need.folder, entry, need.required_by)
    if need.required_by is not None:
        main = main_paths.get((need.folder, need.required_by))
        directory = main.parent if main else root
        name = Path(need.name).name  # a Hugging Face folder's files lie in the main file's folder
        state.path = _beside(directory, entry, name, need.required_by)
        state.target = directory / name
    else:
        for folder in searched_folders(need.folder):
            state.path = locate(models_dir / folder, need.name, in_folder=entry is not None and entry.in_hf_folder)
            if state.path is not None:
                break
        main_paths[(need.folder, need.name)] = state.path
        state.target = models_dir / entry.folder / entry.name if entry else root / need.name
    if state.path is not None:
        state.status = "present"
        state.actual_size = state.path.stat().st_size
    if entry is None:
        state.note = f"not in the catalog: put it in models/{need.folder} yourself"
    elif state.path is not None and state.path.name != entry.file_name:
        state.note = f"found as {state.path.name} (accepted by the pack; not checked against the catalog)"
    elif state.path is not None and entry.sha256 is None:
        _check_size(state)  # cheap: always done when the size is all there is
    return state


def _check_size(state: FileState) -> bool:
    entry = state.entry
    if entry.size is not None and state.actual_size != entry.size:
        state.status = "wrong size"
        state.note = f"{state.actual_size} bytes, expected {entry.size}"
        return False
    state.note = _unverified_note(entry)
    return True


def verify(state: FileState, progress_stream=None) -> None:
    """Compare a present catalog file with its size and sha256 (hashing it: slow for big files)."""
    entry = state.entry
    if entry is None or state.path is None or state.path.name != entry.file_name:
        return
    if not _check_size(state) or entry.sha256 is None:
        return
    state.actual_sha256 = sha256_of(state.path, progress_stream)
    if state.actual_sha256 != entry.sha256:
        state.status = "wrong checksum"
        state.note = f"sha256 {state.actual_sha256}, expected {entry.sha256}"
    else:
        state.note = "sha256 verified"


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def _status_text(state: FileState) -> str:
    if state.entry is None:
        return f"{state.status} (not in the catalog)"
    return state.status


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def render_text(models_dir: Path, origin: str, report: list[tuple[Path, list[FileState]]]) -> str:
    """One table: each file once, with the workflows that use it."""
    lines = [f"models folder: {models_dir} ({origin})", ""]
    unique: dict[tuple, tuple[FileState, list[str]]] = {}
    for path, states in report:
        for state in states:
            unique.setdefault((state.folder, state.name, state.required_by), (state, []))[1].append(path.stem)
    if not unique:
        lines.append("  (the workflows load no model files)")
    else:
        rows = [["file", "folder", "status", "size", "used by"]]
        notes = []
        for s, users in unique.values():
            size = s.actual_size if s.actual_size is not None else (s.entry.size if s.entry else None)
            name = s.name if s.required_by is None else f"{s.name} (beside {s.required_by})"
            rows.append([name, s.folder, _status_text(s), human_size(size), ", ".join(users)])
            if s.note and (not s.ok or s.entry is not None and s.entry.sha256 is None):
                notes.append(f"  {s.name}: {s.note}")
        lines += _table(rows) + notes
    states = [s for _, group in report for s in group]
    missing = [s for s in states if s.status == "missing" and s.entry is not None]
    bad = [s for s in states if s.status in ("wrong size", "wrong checksum")]
    if missing:
        lines += [
            "",
            f"{len({s.name for s in missing})} catalog file(s) missing: "
            "`grounded-ip2p models --download` fetches them.",
        ]
    if bad:
        lines += [
            "",
            "Files that do not match the catalog: `grounded-ip2p models --verify --download` "
            "fetches them again (the old file is replaced only by a verified one).",
        ]
    return "\n".join(lines) + "\n"


def _verify_present(report: list[tuple[Path, list[FileState]]], err) -> None:
    """Hash every present catalog file once (a file several workflows share is read once)."""
    hashed: dict[Path, FileState] = {}
    for _, states in report:
        for s in states:
            if s.status != "present" or s.entry is None:
                continue
            key = s.path.resolve()
            if key in hashed:
                done = hashed[key]
                s.status, s.actual_sha256, s.note = done.status, done.actual_sha256, done.note
            else:
                verify(s, err)
                hashed[key] = s


def _download_missing(report: list[tuple[Path, list[FileState]]], prog: str, err) -> None:
    """Download each missing or wrong catalog file once, into the place every workflow looks for it."""
    by_target: dict[Path, list[FileState]] = {}
    for _, states in report:
        for s in states:
            if s.entry is not None and s.status in ("missing", "wrong size", "wrong checksum"):
                by_target.setdefault(s.path if s.path is not None else s.target, []).append(s)
    for target, states in by_target.items():
        entry = states[0].entry
        try:
            sha = download(entry, target, progress_stream=err)
        except (DownloadError, OSError) as exc:  # OSError: e.g. the folder is not writable
            print(f"{prog}: could not download {entry.name}: {exc}", file=err)
            for s in states:
                s.status, s.note = "failed", str(exc)
            continue
        for s in states:
            s.status, s.path, s.actual_size = "downloaded", target, target.stat().st_size
            s.actual_sha256 = sha
            s.note = "sha256 verified" if entry.sha256 else _unverified_note(entry)


def _render_json(models_dir: Path, origin: str, report: list[tuple[Path, list[FileState]]]) -> str:
    payload = {
        "models_dir": str(models_dir),
        "models_dir_origin": origin,
        "ok": all(s.ok for _, states in report for s in states),
        "workflows": [
            {"workflow": path.name, "path": str(path), "files": [s.to_dict() for s in states]}
            for path, states in report
        ],
    }
    return json.dumps(payload, indent=2) + "\n"


def run(args, out=None, err=None) -> int:
    """`grounded-ip2p models` (args from cli.py's parser). Returns the exit code."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    prog = "grounded-ip2p models"
    try:
        models_dir, origin = find_models_dir(args.models_dir, args.comfyui)
        directory = Path(args.workflows_dir).expanduser() if args.workflows_dir else EXAMPLES_DIR
        workflows = list_workflows(directory, args.workflow)
        needs = [(path, read_workflow(path)) for path in workflows]
        if args.download:
            check_mirror()
    except (ModelsError, DownloadError) as exc:
        print(f"{prog}: {exc}", file=err)
        return EXIT_USAGE

    report = []
    for path, wanted in needs:
        main_paths: dict = {}  # one per workflow: a .cfg.py is looked for beside its checkpoint
        report.append((path, [check(need, models_dir, main_paths) for need in wanted]))
    interrupted = False
    try:
        if args.verify:
            _verify_present(report, err)
        if args.download:
            _download_missing(report, prog, err)
    except KeyboardInterrupt:
        interrupted = True
        print(f"\n{prog}: interrupted (no partial file was left)", file=err)

    out.write(_render_json(models_dir, origin, report) if args.json else render_text(models_dir, origin, report))
    out.flush()
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if all(s.ok for _, states in report for s in states) else EXIT_MISSING
