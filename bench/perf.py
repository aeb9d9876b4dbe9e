"""Performance figures for IP2PBlendedSampler and the grounding chain (issue 7).

    COMFYUI_PATH=/path/to/ComfyUI python -m bench.perf [all|sampler|chain|reference|scaling] [flags]

Everything runs on random-weight models at their real sizes (the tests' SD1.5-InstructPix2Pix
checkpoint; GroundingDINO Swin-T, SAM ViT-B (ViT-H with --sam vit_h) and CLIP ViT-L/14), so the
figures are about cost, never quality. On a shared machine absolute times drift, so every
comparison is a RATIO taken within one run: the sides run interleaved (A B A B ...), each repeat
gives a paired ratio, and the table shows the median of those ratios next to the median times.

sampler    IP2PBlendedSampler (mask connected; background noised / inversion) against ComfyUI's
           native IP2P path (InstructPixToPixConditioning + DualCFGGuider + SamplerCustomAdvanced):
           same sampler, steps and seed. Time and peak memory of the edit nodes only (see "How").
           Besides the wall-clock ratio it prints a work ratio: the UNet's cost per latent (pooled
           over all runs) times each side's latents, plus each side's own time outside the UNet.
           On a noisy machine the wall ratio of two equal runs strays by +-10 %; the work ratio
           keeps what differs (extra model calls, anything the node does around the model).
chain      the grounding chain (Noun Phrase Extract -> GroundingDINO Detect -> CLIP Filter ->
           Select Boxes -> SAM Mask) as a share of the whole edit (chain + text encode + sampler +
           VAE decode) in one ComfyUI graph, at 4 candidate phrases.
reference  core level, no ComfyUI: the reference's grounding (docs/method.md §1.4-1.5: one detector
           pass per phrase, one CLIP call per phrase, a second detector pass on the winner, SAM)
           against ours (one detector pass for all phrases, one batched CLIP call, SAM), same
           models, image and boxes. Also SAM's decoder with and without 32-box chunks.
scaling    time and peak memory per image over image sizes and batch sizes, chain and sampler.
all        all four with their defaults (about 20 min on 2 shared CPU cores).

How the edit nodes are timed: ComfyUI sends an "executing" event as each node starts (when the
prompt has a client id); the bench timestamps them, so a node's time runs from its event to the
next one. Each run loads a differently named copy of the same image, so the image node and every
node after it run again while the checkpoint, the text encodings and the grounding models stay
cached; the same seed gives every repeat the same work. Native's edit is InstructPixToPix-
Conditioning (which VAE-encodes the image) + DualCFGGuider + SamplerCustomAdvanced; ours is the one
IP2PBlendedSampler node, which does the same encode inside.

Peak memory: on a GPU, torch's peak allocation. On a CPU, the process's resident memory (RSS)
sampled every 5 ms, above its level when the measured nodes start (models already resident, so
it counts what the edit allocates), after malloc_trim so freed heap is given back first. "total"
is the peak RSS itself (models included), the analogue of a GPU's max_memory_allocated. RSS is a
proxy: the allocator may reuse freed memory, so small differences mean little.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import os
import shlex
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.grounding_figures import model_files, provide_models
from bench.memory import PeakRSS, malloc_trim

MiB = 2**20


# ----------------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------------
@dataclass
class Span:
    seconds: float
    start: float
    rss_start: int
    rss_peak: int


@dataclass
class Cost:
    seconds: float
    peak_above: int  # bytes above the RSS at the first measured node's start (CPU) / peak allocation (GPU)
    peak_total: int  # the peak RSS itself (CPU) / peak allocation (GPU)


class NodeMeter:
    """Time and peak RSS of every node ComfyUI executes, from its own per-node "executing" events."""

    def __init__(self, comfy, interval: float = 0.005):
        import psutil

        self.comfy = comfy
        self.process = psutil.Process()
        self.interval = interval
        self.lock = threading.Lock()
        self.marks: list[list] = []  # [node or None, time, rss at start, peak rss]
        self.steps: list[tuple[float, str]] = []  # (time, node) of every progress-bar update
        send = comfy.server.send_sync

        def send_sync(event, data, sid=None):
            if event == "executing":
                self._mark(data.get("node"))
            elif event in ("execution_success", "execution_error", "execution_interrupted"):
                self._mark(None)
            return send(event, data, sid)

        comfy.server.send_sync = send_sync
        comfy.on_progress = lambda value, total: self.steps.append(
            (time.perf_counter(), self.marks[-1][0] if self.marks else None)
        )
        threading.Thread(target=self._sample, daemon=True).start()

    def _mark(self, node):
        now, current = time.perf_counter(), self.process.memory_info().rss
        with self.lock:
            if self.marks:
                self.marks[-1][3] = max(self.marks[-1][3], current)
            self.marks.append([node, now, current, current])

    def _sample(self):
        while True:
            current = self.process.memory_info().rss
            with self.lock:
                if self.marks and self.marks[-1][0] is not None:
                    self.marks[-1][3] = max(self.marks[-1][3], current)
            time.sleep(self.interval)

    def run(self, prompt: dict, capture=("out",)) -> tuple[dict, dict[str, Span]]:
        """ComfyHarness.run with a client id (so ComfyUI sends its "executing" events); returns the
        node outputs and {node: Span} for the nodes that executed (cached ones are absent)."""
        malloc_trim()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        with self.lock:
            self.marks = []
        self.steps = []
        results = self.comfy.run(prompt, capture, extra_data={"client_id": "bench-perf"})
        with self.lock:
            marks = [list(m) for m in self.marks]
        spans = {
            m[0]: Span(n[1] - m[1], m[1], m[2], max(m[3], n[2])) for m, n in zip(marks, marks[1:]) if m[0] is not None
        }
        return results, spans

    def step_seconds(self, node: str) -> list[float]:
        """The intervals between a node's progress updates in the last run (a sampler's steps)."""
        times = [t for t, n in self.steps if n == node]
        return [b - a for a, b in zip(times, times[1:])]


class UNetClock:
    """Calls and seconds inside the SD UNet's forward (the class's, so every loaded copy counts).

    The edit's time minus its UNet time is what the node adds around the model: the figure that
    machine noise in the UNet's own convolutions cannot hide."""

    def __init__(self):
        from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

        self.calls, self.items, self.seconds = 0, 0, 0.0
        forward = UNetModel.forward
        clock = self

        def timed(module, *args, **kwargs):
            t = time.perf_counter()
            try:
                return forward(module, *args, **kwargs)
            finally:
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                clock.calls += 1
                clock.items += args[0].shape[0] if args else kwargs["x"].shape[0]  # latents in the call's batch
                clock.seconds += time.perf_counter() - t

        UNetModel.forward = timed

    def read(self) -> tuple[int, int, float]:
        return self.calls, self.items, self.seconds


def cost(spans: dict[str, Span], nodes) -> Cost:
    """The time of these nodes (those that ran) and the peak memory while they ran."""
    ran = [spans[n] for n in nodes if n in spans]
    if not ran:
        raise RuntimeError(f"none of {list(nodes)} executed (all cached?)")
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated()
        return Cost(sum(s.seconds for s in ran), peak, peak)
    start = min(ran, key=lambda s: s.start)  # the first of them to run
    peak = max(s.rss_peak for s in ran)
    return Cost(sum(s.seconds for s in ran), peak - start.rss_start, peak)


class LogCatcher(logging.Handler):
    """Keeps the messages of a logger (the sampler's INFO line counts its extra model calls)."""

    def __init__(self, name: str):
        super().__init__(logging.INFO)
        self.messages: list[str] = []
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(self)

    def emit(self, record):
        self.messages.append(record.getMessage())


def median(values) -> float:
    return statistics.median(values)


def spread(values) -> str:
    """min-max of a list of ratios, for the reader to see the noise."""
    return f"{min(values):.3f}-{max(values):.3f}" if len(values) > 1 else "-"


def device_line() -> str:
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name()}"
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {model}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def command() -> str:
    env = f"COMFYUI_PATH={os.environ.get('COMFYUI_PATH', '/path/to/ComfyUI')} "
    return env + "python -m bench.perf " + shlex.join(sys.argv[1:])


def header(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def save_image(path: Path, size: int, alpha: bool = True, seed: int = 0) -> None:
    """A random photo; with alpha, its centre is transparent (the area to edit, LoadImage's mask)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, (size, size, 4)).astype(np.uint8)
    rgba[..., 3] = 255
    q = size // 4
    rgba[q : 3 * q, q : 3 * q, 3] = 0
    Image.fromarray(rgba if alpha else rgba[..., :3], "RGBA" if alpha else "RGB").save(path)


class Images:
    """Differently named copies of one image: each run loads a "new" file, so the image node and
    everything after it run again while the upstream nodes stay cached."""

    def __init__(self, comfy, size: int, alpha: bool = True, seed: int = 0):
        self.folder = comfy.work / "input"
        self.master = self.folder / f"perf_{size}_{int(alpha)}_{seed}.png"
        save_image(self.master, size, alpha, seed)
        self.count = 0

    def variant(self, k: int) -> str:
        """A copy whose top-left pixel differs (a different photo to SAM, the same to the detector)."""
        import numpy as np
        from PIL import Image

        name = f"{self.master.stem}_v{k}.png"
        if not (self.folder / name).exists():
            pixels = np.array(Image.open(self.master))
            pixels[0, 0, :3] = (pixels[0, 0, :3].astype(int) + 17 * k) % 256
            Image.fromarray(pixels).save(self.folder / name)
        return name

    def fresh(self) -> str:
        self.count += 1
        name = f"{self.master.stem}_{self.count}.png"
        (self.folder / name).write_bytes(self.master.read_bytes())
        return name


# ----------------------------------------------------------------------------------------------
# ComfyUI and the models
# ----------------------------------------------------------------------------------------------
_COMFY = None


def comfy_harness():
    global _COMFY
    if _COMFY is None:
        from tests.comfy_harness import bench_harness

        comfy = bench_harness("bench-perf-")
        comfy.meter = NodeMeter(comfy)
        comfy.sampler_log = LogCatcher("grounded-ip2p")
        comfy.unet = UNetClock()
        _COMFY = comfy
    return _COMFY


def ip2p_in(comfy) -> str:
    from tests import checkpoints

    ckpt = checkpoints.ip2p_checkpoint()
    comfy.add_models("checkpoints", ckpt.parent)
    return ckpt.name


def core_models(models: str, sam_size: str):
    """GroundingDINO, CLIP and SAM as the pack's core objects (no ComfyUI), from the bench's files."""
    from grounded_ip2p.grounding.clip_score import load_clip
    from grounded_ip2p.grounding.gdino import load_grounding_dino
    from grounded_ip2p.grounding.sam import load_sam

    from tests.checkpoints import cache_dir
    from tests.sam_checkpoint import sam_checkpoint

    files = model_files(models)
    if sam_size == "vit_h":
        files["sam"] = sam_checkpoint(cache_dir() / "bench-perf-sam-vit_h", size="vit_h")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gd = load_grounding_dino(files["gdino"], device=device)
    clip = load_clip(files["clip"]).to(device)
    sam = load_sam(files["sam"]).to(device)
    return gd, clip, sam


# ----------------------------------------------------------------------------------------------
# 1. IP2PBlendedSampler against ComfyUI's native IP2P path
# ----------------------------------------------------------------------------------------------
NATIVE_EDIT = ("ip2p", "guider", "noise", "sampler", "sigmas", "out")
SIDES = ("native", "noised", "inversion")


def sampler_prompt(ckpt: str, image: str, side: str, sampler: str, steps: int, seed: int) -> tuple[dict, tuple]:
    from tests.graphs import blended, graph, native

    base = graph(ckpt, image)
    if side == "native":
        return {**base, **native(sampler, steps, seed)}, NATIVE_EDIT
    return {**base, **blended(sampler, steps, seed, mask=True, background=side)}, ("out",)


def extra_calls(comfy) -> str:
    """From the sampler's log line: model calls in the blending window / extra single-branch calls."""
    import re

    for message in reversed(comfy.sampler_log.messages):
        found = re.search(r"restored on (\d+) model calls .*?, (\d+) extra calls", message)
        if found:
            return f"{found.group(1)} / {found.group(2)}"
    return "-"


def bench_sampler(args) -> dict:
    comfy = comfy_harness()
    ckpt = ip2p_in(comfy)
    images = Images(comfy, args.size)
    header(
        f"1. IP2PBlendedSampler vs native IP2P: {args.sampler}, {args.size}x{args.size} px, seed {args.seed}, "
        f"{args.repeats} interleaved repeats, {device_line()}"
    )
    results = {}
    for steps in args.steps:
        for side in SIDES:  # warm-up: loads the checkpoint, first allocations (2 steps are enough)
            comfy.meter.run(sampler_prompt(ckpt, images.fresh(), side, args.sampler, 2, args.seed)[0])
        runs = {s: [] for s in SIDES}  # per run: (seconds, peak above, peak total, UNet calls, items, UNet s)
        calls = {}
        for rep in range(args.repeats):
            order = SIDES[rep % 3 :] + SIDES[: rep % 3]  # rotate, so no side always runs first
            for side in order:
                comfy.sampler_log.messages.clear()
                prompt, nodes = sampler_prompt(ckpt, images.fresh(), side, args.sampler, steps, args.seed)
                before = comfy.unet.read()
                _, spans = comfy.meter.run(prompt)
                unet = [a - b for a, b in zip(comfy.unet.read(), before)]
                c = cost(spans, nodes)
                runs[side].append((c.seconds, c.peak_above, c.peak_total, *unet))
                calls[side] = extra_calls(comfy) if side != "native" else "-"
        # Work-based ratio: one UNet cost per latent (pooled over every run of every side) times each
        # side's latents, plus each side's own time outside the UNet. The UNet's run-to-run noise
        # cancels; extra model calls and anything the node adds around the model remain.
        per_item = sum(r[5] for v in runs.values() for r in v) / sum(r[4] for v in runs.values() for r in v)

        def modelled(r):
            return r[4] * per_item + (r[0] - r[5])

        rows = []
        for side in SIDES:
            rs, nat = runs[side], runs["native"]
            t_ratio = [a[0] / b[0] for a, b in zip(rs, nat)]
            work = median(modelled(a) for a in rs) / median(modelled(b) for b in nat)
            rows.append(
                dict(
                    side=side,
                    seconds=median(r[0] for r in rs),
                    ratio=median(t_ratio),
                    spread=spread(t_ratio),
                    work=work,
                    calls=rs[-1][3],
                    items=rs[-1][4],
                    outside=median(r[0] - r[5] for r in rs),
                    above=median(r[1] for r in rs) / MiB,
                    above_ratio=median(max(a[1], 1) / max(b[1], 1) for a, b in zip(rs, nat)),
                    total=median(r[2] for r in rs) / MiB,
                    total_ratio=median(a[2] / b[2] for a, b in zip(rs, nat)),
                    window=calls[side],
                )
            )
        print(f"\nsteps {steps} (UNet: {per_item * 1e3:.0f} ms per latent, pooled):")
        print(
            f"{'side':<10} {'edit s':>7} {'wall ratio':>10} {'(min-max)':>12} {'work ratio':>10} {'UNet calls':>10} "
            f"{'latents':>7} {'outside UNet s':>14} {'peak +MiB':>9} {'ratio':>6} {'total MiB':>9} {'ratio':>6}  "
            f"window calls / extra"
        )
        for r in rows:
            print(
                f"{r['side']:<10} {r['seconds']:>7.2f} {r['ratio']:>10.3f} {r['spread']:>12} {r['work']:>10.3f} "
                f"{r['calls']:>10} {r['items']:>7} {r['outside']:>14.3f} {r['above']:>9.0f} {r['above_ratio']:>6.2f} "
                f"{r['total']:>9.0f} {r['total_ratio']:>6.3f}  {r['window']}"
            )
        goals = {"noised": 1.02, "inversion": 1.06}
        for r in rows[1:]:
            goal = goals[r["side"]]
            print(
                f"  goal {r['side']} time ratio <= {goal}: wall {r['ratio']:.3f} "
                f"({'met' if r['ratio'] <= goal else 'NOT met'}), work {r['work']:.3f} "
                f"({'met' if r['work'] <= goal else 'NOT met'})"
            )
        print(
            f"  goal peak memory ratio <= 1.2: above-baseline {max(r['above_ratio'] for r in rows[1:]):.2f}, "
            f"total {max(r['total_ratio'] for r in rows[1:]):.3f}"
        )
        results[steps] = rows
    print(f"\ncommand: {command()}", flush=True)
    return results


# ----------------------------------------------------------------------------------------------
# 2. The grounding chain's share of the whole edit
# ----------------------------------------------------------------------------------------------
CHAIN_TEMPLATE = "make the {} with the {} on the {} wear a {}"  # guided: 4 candidates, the first is the target
CHAIN_NOUNS = ("man", "dog", "bench", "hat")


def chain_instruction(comfy, names: dict, image_path: Path) -> str:
    """The instruction whose target the random-weight detector gives boxes on this image.

    Random weights label each of the 900 queries with whichever phrase scores highest, and may give
    some phrase none; a target without boxes makes SAM Mask take its fallback and SAM never runs,
    which would leave SAM out of the figures. So the bench rotates the four nouns until the target
    (the first) has boxes, as a trained detector would for an object in the photo."""
    import numpy as np
    from grounded_ip2p.grounding.phrases import extract
    from PIL import Image

    gd = loaded_core(comfy, "GroundedIP2P_GroundingDINOLoader", names["gdino"])
    image = torch.from_numpy(np.asarray(Image.open(image_path).convert("RGB"), dtype=np.float32) / 255)[None]
    for k in range(len(CHAIN_NOUNS)):
        text = CHAIN_TEMPLATE.format(*(CHAIN_NOUNS[k:] + CHAIN_NOUNS[:k]))
        phrases = extract(text, "guided")
        if len(gd.detect(image, phrases.to_detect, 0.0, 0.0)[0].with_label(phrases.target)):
            return text
    raise RuntimeError("the random-weight detector gave no target boxes in any rotation; try another --seed")


CHAIN_NODES = ("np", "det", "filter", "select", "mask")


def edit_prompt(names: dict, ckpt: str, image: str, instruction: str, steps: int, seed: int, background: str) -> dict:
    """The whole grounded edit (the tests' chain + IP2P Blended Sampler) and its VAE decode."""
    from tests.graphs import edit

    prompt = edit(
        names,
        image,
        ckpt,
        seed=seed,
        steps=steps,
        sampler="euler_ancestral",
        background=background,
        instruction=instruction,
        mode="guided",
        box_threshold=0.0,
        text_threshold=0.0,
    )
    prompt["dec"] = {"class_type": "VAEDecode", "inputs": {"samples": ["out", 0], "vae": ["ckpt", 2]}}
    return prompt


def with_batch(prompt: dict, images: "Images", batch: int) -> dict:
    """Feed a batch of `batch` images to every node that reads the loaded image: the image and
    copies of it that differ in one pixel, so that every image is a different photo to SAM (whose
    embedding is kept per photo) while the random-weight detector still finds the same boxes."""
    if batch == 1:
        return prompt
    prompt = copy.deepcopy(prompt)
    readers = [(node, key) for node in prompt.values() for key, value in node["inputs"].items() if value == ["img", 0]]
    last = ["img", 0]
    for k in range(1, batch):
        prompt[f"img_{k}"] = {"class_type": "LoadImage", "inputs": {"image": images.variant(k)}}
        prompt[f"batch_{k}"] = {"class_type": "ImageBatch", "inputs": {"image1": last, "image2": [f"img_{k}", 0]}}
        last = [f"batch_{k}", 0]
    for node, key in readers:
        node["inputs"][key] = last
    return prompt


def bench_chain(args) -> dict:
    comfy = comfy_harness()
    ckpt = ip2p_in(comfy)
    names = provide_models(comfy, args.models)
    images = Images(comfy, args.chain_size, alpha=False)
    header(
        f"2. Grounding chain vs the whole edit: {args.models} models, {args.chain_size}x{args.chain_size} px, "
        f"euler_ancestral {args.edit_steps} steps measured (background {args.background}), "
        f"{args.chain_repeats} repeat(s), {device_line()}"
    )
    text = chain_instruction(comfy, names, images.master)
    print(f"instruction: {text!r} (guided; box and text thresholds 0 so random weights give boxes)")

    def instruction(i):  # a new input string each run, so Noun Phrase Extract runs again too
        return text + " " * i

    # warm-up: loads every model and spaCy; one step is enough for that
    comfy.meter.run(
        edit_prompt(names, ckpt, images.fresh(), instruction(0), 1, args.seed, args.background), capture=("dec", "np")
    )
    parts = {"chain": CHAIN_NODES, "text encode": ("pos",), "sampler": ("out",), "VAE decode": ("dec",)}
    rows = {k: [] for k in (*parts, "whole")}
    per_node = {n: [] for n in CHAIN_NODES}
    step_times = []
    gd = loaded_core(comfy, "GroundedIP2P_GroundingDINOLoader", names["gdino"])
    clip = loaded_core(comfy, "GroundedIP2P_ClipFilterLoader", names["clip"])
    sam = loaded_core(comfy, "GroundedIP2P_SAMLoader", names["sam"])
    for rep in range(args.chain_repeats):
        sam.forget_image()  # a new photo each run: SAM embeds it (the copies share their pixels)
        before = (gd.forward_passes, clip.image_passes, clip.text_passes, sam.encoder_passes)
        res, spans = comfy.meter.run(
            edit_prompt(names, ckpt, images.fresh(), instruction(rep + 1), args.edit_steps, args.seed, args.background),
            capture=("dec", "np", "select", "det"),
        )
        passes = (
            gd.forward_passes - before[0],
            clip.image_passes - before[1],
            clip.text_passes - before[2],
            sam.encoder_passes - before[3],
        )
        for k, nodes in parts.items():
            rows[k].append(cost(spans, nodes))
        rows["whole"].append(cost(spans, [n for k in parts for n in parts[k]]))
        for n in CHAIN_NODES:
            per_node[n].append(spans[n].seconds)
        step_times += comfy.meter.step_seconds("out")
    ps = comfy.output(res, "np")
    chosen = comfy.output(res, "select")[0]
    found = comfy.output(res, "det")[0]
    crops = sum(1 for p in ps.candidates if len(found.with_label(p)))
    print(
        f"phrases detected: {ps.to_detect}; candidates: {ps.candidates}, {crops} with boxes (= CLIP crops); "
        f"boxes found: {len(found)}; boxes to SAM: {len(chosen)}; "
        f"passes per run: detector {passes[0]}, CLIP image/text {passes[1]}/{passes[2]}, SAM embeddings {passes[3]}"
    )
    # The artist changes the instruction on the same photo: SAM keeps the photo's embedding.
    # (one sampler step: only the chain's time is read)
    _, again = comfy.meter.run(
        edit_prompt(names, ckpt, images.fresh(), instruction(args.chain_repeats + 1), 1, args.seed, args.background),
        capture=("dec",),
    )
    reedit = cost(again, CHAIN_NODES).seconds
    med = {k: median(c.seconds for c in rows[k]) for k in rows}
    print(f"\n{'part':<14} {'seconds':>8} {'peak +MiB':>9}")
    for k in rows:
        print(f"{k:<14} {med[k]:>8.2f} {median(c.peak_above for c in rows[k]) / MiB:>9.0f}")
    print("chain nodes: " + ", ".join(f"{n} {median(per_node[n]):.2f} s" for n in CHAIN_NODES))
    print(
        f"same photo, new instruction (SAM's embedding kept): chain {reedit:.2f} s (SAM Mask "
        f"{again['mask'].seconds:.2f} s) against {med['chain']:.2f} s (SAM Mask {median(per_node['mask']):.2f} s)"
    )
    share = med["chain"] / med["whole"]
    print(f"chain / whole edit at {args.edit_steps} steps (measured) = {share:.3f}")
    result = {"share": {args.edit_steps: share}, "rows": rows, "per_node": per_node}
    if step_times:
        per_step = median(step_times)
        fixed = med["whole"] - args.edit_steps * per_step  # chain, encodes, decode: independent of the steps
        print(f"sampler step (3 UNet branches): {per_step:.2f} s (median of {len(step_times)} step intervals)")
        for n in args.extrapolate:
            whole = fixed + n * per_step
            result["share"][n] = med["chain"] / whole
            print(
                f"chain / whole edit at {n} steps (extrapolated: measured non-step time + {n} x step) = "
                f"{med['chain'] / whole:.3f}  (whole {whole:.0f} s)"
            )
    for n, value in sorted(result["share"].items()):
        print(
            f"  goal chain share <= 0.10 (GPU spec) at {n} steps: {'met' if value <= 0.10 else 'NOT met'} "
            f"on this CPU ({value:.3f})"
        )
    print(f"\ncommand: {command()}")
    return result


def loaded_core(comfy, node: str, name: str):
    from tests.graphs import loaded_model

    return loaded_model(comfy, node, name)


# ----------------------------------------------------------------------------------------------
# 3. The reference's grounding against ours, core level
# ----------------------------------------------------------------------------------------------
REFERENCE_PHRASES = ["man", "dog", "bench", "hat"]


def top_per_phrase(det, k: int):
    """For each phrase searched, the k queries that score it highest, labelled with it.

    Random weights at threshold 0 keep all 900 queries and may give a phrase none (each query is
    labelled with its best phrase), where a trained detector at 0.3 finds a few boxes of each object
    in the image. So both sides get k boxes per phrase, ranked by that phrase's own score: the same
    number of CLIP crops (one per phrase) and of boxes for SAM, whatever the random weights do.
    """
    from grounded_ip2p.grounding.detections import Detections

    if k <= 0:
        return det
    phrases, scores = det.phrases, det.phrase_scores
    boxes, values, labels = [], [], []
    for j, phrase in enumerate(phrases):
        best = scores[:, j].argsort(descending=True)[:k]
        boxes.append(det.boxes[best])
        values.append(scores[best, j])
        labels += [phrase] * len(best)
    return Detections(torch.cat(boxes), torch.cat(values), labels, det.image_size, det.note, phrases=phrases)


class Clock:
    """Seconds per component of one grounding run: `with clock("detector"): ...` adds to that part."""

    def __init__(self):
        self.parts: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, part: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.parts[part] = self.parts.get(part, 0.0) + time.perf_counter() - t0


def reference_grounding(gd, clip, sam, image, phrases, k: int, clock: Clock):
    """docs/method.md §1.4-1.5 with the pack's core objects: per phrase a detector pass on its own caption
    and a CLIPScore call on the crop of its boxes' union; the winner detected again; SAM on its boxes."""
    from grounded_ip2p.grounding import masks as mask_ops
    from grounded_ip2p.grounding.clip_score import crop

    scores = []
    for phrase in phrases:
        with clock("detector"):
            det = top_per_phrase(gd.detect(image[None], [phrase], 0.0, 0.0)[0], k)
        if len(det) == 0:
            scores.append(0.0)
            continue
        with clock("CLIP"):
            scores.append(float(clip.score([crop(image, det.union_box())], [phrase])[0, 0]))
    winner = phrases[max(range(len(phrases)), key=scores.__getitem__)]
    with clock("detector"):
        det = top_per_phrase(gd.detect(image[None], [winner], 0.0, 0.0)[0], k)
    with clock("SAM"):
        masks = sam.segment(image, det.boxes)
        mask = mask_ops.dilate(masks.amax(0, keepdim=True).float(), 11)
    return winner, mask, len(det)


def our_grounding(gd, clip, sam, image, phrases, k: int, clock: Clock):
    """What the nodes do: one detector pass for every phrase, one batched CLIP call, SAM once."""
    from grounded_ip2p.grounding import masks as mask_ops
    from grounded_ip2p.grounding.clip_score import pick_phrase

    with clock("detector"):
        det = top_per_phrase(gd.detect(image[None], phrases, 0.0, 0.0)[0], k)
    with clock("CLIP"):
        pick = pick_phrase(image, det, phrases, clip)
    with clock("SAM"):
        masks = sam.segment(image, pick.detections.boxes)
        mask = mask_ops.dilate(masks.amax(0, keepdim=True).float(), 11)
    return pick.phrase, mask, len(pick.detections)


def passes(gd, clip, sam) -> tuple[int, int, int, int]:
    return gd.forward_passes, clip.image_passes, clip.text_passes, sam.encoder_passes


def bench_reference(args, models=None) -> dict:
    header(
        f"3. Reference grounding vs ours (core level): {args.models} models, "
        f"{args.ref_size}x{args.ref_size} px, {len(REFERENCE_PHRASES)} phrases, top {args.top_k} boxes per phrase, "
        f"{args.ref_repeats} interleaved repeats, {device_line()}"
    )
    t0 = time.perf_counter()
    gd, clip, sam = models or core_models(args.models, args.sam)
    print(
        f"models ready in {time.perf_counter() - t0:.0f} s: GroundingDINO {gd.variant}, SAM {sam.variant}, "
        f"CLIP {type(clip.model).__name__}"
    )
    g = torch.Generator().manual_seed(0)
    image = torch.rand(args.ref_size, args.ref_size, 3, generator=g)
    sides = {"reference": reference_grounding, "ours": our_grounding}
    # warm-up (first-call allocations, lazy imports): ours calls every model once
    our_grounding(gd, clip, sam, image, REFERENCE_PHRASES, args.top_k, Clock())
    rec = {s: {"seconds": [], "parts": [], "passes": None, "peak": [], "boxes": None, "winner": None} for s in sides}
    for rep in range(args.ref_repeats):
        for side in ("reference", "ours") if rep % 2 == 0 else ("ours", "reference"):
            clock = Clock()
            sam.forget_image()  # both sides embed the photo, as the reference does on every run
            before = passes(gd, clip, sam)
            with PeakRSS() as peak:
                t = time.perf_counter()
                winner, mask, boxes = sides[side](gd, clip, sam, image, REFERENCE_PHRASES, args.top_k, clock)
                seconds = time.perf_counter() - t
            r = rec[side]
            r["seconds"].append(seconds)
            r["parts"].append(clock.parts)
            r["peak"].append(peak.above)
            r["passes"] = tuple(a - b for a, b in zip(passes(gd, clip, sam), before))
            r["boxes"], r["winner"] = boxes, winner
    speedups = [a / b for a, b in zip(rec["reference"]["seconds"], rec["ours"]["seconds"])]
    print(
        f"\n{'side':<10} {'seconds':>8} {'detector s':>10} {'CLIP s':>7} {'SAM s':>7} {'det. passes':>11} "
        f"{'CLIP img/txt':>12} {'SAM embeds':>10} {'SAM boxes':>9} {'peak +MiB':>9}  winner"
    )
    for side, r in rec.items():
        parts = {p: median(x.get(p, 0.0) for x in r["parts"]) for p in ("detector", "CLIP", "SAM")}
        d, ci, ct, se = r["passes"]
        print(
            f"{side:<10} {median(r['seconds']):>8.2f} {parts['detector']:>10.2f} {parts['CLIP']:>7.2f} "
            f"{parts['SAM']:>7.2f} {d:>11} {f'{ci}/{ct}':>12} {se:>10} {r['boxes']:>9} "
            f"{median(r['peak']) / MiB:>9.0f}  {r['winner']}"
        )
    speedup = median(speedups)
    print(
        f"reference / ours = {speedup:.2f}x (per repeat {spread(speedups)}); goal ours >= 2x faster: "
        f"{'met' if speedup >= 2 else 'NOT met'}"
    )
    out = {"speedup": speedup, "rec": rec}
    if args.decoder_boxes:
        out["decoder"] = bench_decoder(sam, image, args.decoder_boxes)
    print(f"\ncommand: {command()}")
    return out


def bench_decoder(sam, image, boxes: int) -> list:
    """SAM's mask decoder on many boxes: in chunks of 32 (the pack) against all at once."""
    g = torch.Generator().manual_seed(1)
    h, w = image.shape[:2]
    xy = torch.rand(boxes, 2, generator=g) * torch.tensor([w * 0.7, h * 0.7])
    wh = torch.rand(boxes, 2, generator=g) * torch.tensor([w * 0.3, h * 0.3]) + 8
    box = torch.cat([xy, xy + wh], 1)
    default = sam.decoder_batch
    rows = []
    print(f"\nSAM segment on {boxes} boxes ({h}x{w} px; one image embedding each run):")
    print(f"{'decoder batch':<14} {'seconds':>8} {'peak +MiB':>9}")
    try:
        for chunk in (default, boxes, default):  # A B A: the first and last bracket the other
            sam.decoder_batch = chunk
            with PeakRSS() as peak:
                t = time.perf_counter()
                sam.segment(image, box)
                seconds = time.perf_counter() - t
            rows.append((chunk, seconds, peak.above))
            print(f"{chunk:<14} {seconds:>8.2f} {peak.above / MiB:>9.0f}")
    finally:
        sam.decoder_batch = default
    return rows


# ----------------------------------------------------------------------------------------------
# 4. Scaling
# ----------------------------------------------------------------------------------------------
def grid(text: str) -> list[tuple[int, int]]:
    """ "512x1,512x4" -> [(512, 1), (512, 4)] (size x batch)."""
    out = []
    for item in text.split(","):
        size, batch = item.lower().split("x")
        out.append((int(size), int(batch)))
    return out


def bench_scaling(args) -> dict:
    comfy = comfy_harness()
    result = {}
    if args.chain_grid:
        names = provide_models(comfy, args.models)
        header(f"4a. Grounding chain scaling: {args.models} models, guided, 4 phrases, {device_line()}")
        rows = []
        for size, batch in grid(args.chain_grid):
            images = Images(comfy, size, alpha=False)
            text = chain_instruction(comfy, names, images.master)
            from tests.graphs import chain

            def prompt():
                p = chain(names, images.fresh(), instruction=text, mode="guided", box_threshold=0.0, text_threshold=0.0)
                return with_batch(p, images, batch)

            if not rows:
                comfy.meter.run(prompt(), capture=("mask",))  # warm-up (loads the models if not yet loaded)
            loaded_core(comfy, "GroundedIP2P_SAMLoader", names["sam"]).forget_image()
            _, spans = comfy.meter.run(prompt(), capture=("mask",))
            c = cost(spans, CHAIN_NODES)
            rows.append((size, batch, c))
            print(
                f"{size:>5} px x{batch:<2} {c.seconds:>8.2f} s  {c.seconds / batch:>7.2f} s/image  "
                f"peak +{c.peak_above / MiB:>6.0f} MiB  ({c.peak_above / MiB / batch:>5.0f} MiB per image of the batch)",
                flush=True,
            )
        result["chain"] = rows
    if args.sampler_grid:
        ckpt = ip2p_in(comfy)
        header(
            f"4b. IP2PBlendedSampler scaling: euler_ancestral {args.scale_steps} steps, mask, background "
            f"{args.background}, {device_line()}"
        )
        rows = []
        from tests.graphs import blended, graph

        for size, batch in grid(args.sampler_grid):
            images = Images(comfy, size)

            def prompt():
                p = {
                    **graph(ckpt, images.fresh()),
                    **blended("euler_ancestral", args.scale_steps, args.seed, mask=True, background=args.background),
                }
                return with_batch(p, images, batch)

            if not rows:
                comfy.meter.run(prompt())  # warm-up (loads the checkpoint if not yet loaded)
            _, spans = comfy.meter.run(prompt())
            c = cost(spans, ("out",))
            rows.append((size, batch, c))
            steps = comfy.meter.step_seconds("out")
            per_step = (median(steps) if steps else c.seconds / args.scale_steps) / batch
            print(
                f"{size:>5} px x{batch:<2} {c.seconds:>8.2f} s  {c.seconds / batch:>7.2f} s/image  "
                f"{per_step:>6.2f} s/image/step  peak +{c.peak_above / MiB:>6.0f} MiB "
                f"({c.peak_above / MiB / batch:>5.0f} MiB per image of the batch)",
                flush=True,
            )
        result["sampler"] = rows
    print(f"\ncommand: {command()}")
    return result


# ----------------------------------------------------------------------------------------------
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", nargs="?", default="all", choices=["all", "sampler", "chain", "reference", "scaling"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: on a shared 2-core machine two threads wait on "
        "each other whenever another job takes a core; 0 = torch's default)",
    )
    s = parser.add_argument_group("sampler")
    s.add_argument("--size", type=int, default=64, help="image side in px for the sampler ratios (default 64)")
    s.add_argument("--steps", type=int, nargs="+", default=[20], help="step counts (default 20; the spec: 20 100)")
    s.add_argument("--sampler", default="euler_ancestral")
    s.add_argument("--repeats", type=int, default=3, help="interleaved repeats per side (default 3)")
    c = parser.add_argument_group("chain share")
    c.add_argument("--models", choices=["full", "tiny"], default="full")
    c.add_argument("--chain-size", type=int, default=512)
    c.add_argument(
        "--edit-steps",
        type=int,
        default=3,
        help="steps the whole edit is measured with (default 3; the share at --extrapolate steps is "
        "extrapolated from the measured step time)",
    )
    c.add_argument("--extrapolate", type=int, nargs="*", default=[20, 100])
    c.add_argument(
        "--background",
        choices=["inversion", "noised"],
        default="noised",
        help="the sampler's background in the chain share and scaling runs (default noised: its cost "
        "per step does not depend on the step count, so the extrapolation is exact in model calls)",
    )
    c.add_argument("--chain-repeats", type=int, default=1)
    r = parser.add_argument_group("reference vs ours")
    r.add_argument("--ref-size", type=int, default=512)
    r.add_argument("--ref-repeats", type=int, default=2)
    r.add_argument("--top-k", type=int, default=3, help="boxes kept per phrase on both sides (0 = all)")
    r.add_argument("--sam", choices=["vit_b", "vit_h"], default="vit_b")
    r.add_argument(
        "--decoder-boxes",
        type=int,
        default=0,
        help="also time SAM's decoder on this many boxes, chunked by 32 vs all at once (0 = skip)",
    )
    g = parser.add_argument_group("scaling")
    g.add_argument(
        "--chain-grid", default="512x1,768x1,1024x1,512x4,512x8", help="size x batch list for the chain ('' = skip)"
    )
    g.add_argument(
        "--sampler-grid",
        default="64x1,64x4,64x8,128x1,256x1,512x1",
        help="size x batch list for the sampler ('' = skip)",
    )
    g.add_argument("--scale-steps", type=int, default=4)
    args = parser.parse_args(argv)
    logging.getLogger("grounded-ip2p").propagate = False  # keep the tables readable
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device: {device_line()}")
    print(f"command: {command()}", flush=True)
    t0 = time.perf_counter()
    if args.what in ("all", "sampler"):
        bench_sampler(args)
    if args.what in ("all", "chain"):
        bench_chain(args)
    if args.what in ("all", "reference"):
        models = None
        if _COMFY is not None and args.sam == "vit_b":  # the models ComfyUI already holds: no second copy
            names = provide_models(_COMFY, args.models)
            models = tuple(
                loaded_core(_COMFY, node, names[key])
                for node, key in (
                    ("GroundedIP2P_GroundingDINOLoader", "gdino"),
                    ("GroundedIP2P_ClipFilterLoader", "clip"),
                    ("GroundedIP2P_SAMLoader", "sam"),
                )
            )
        bench_reference(args, models)
    if args.what in ("all", "scaling"):
        bench_scaling(args)
    print(f"\ntotal bench time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
