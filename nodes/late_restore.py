"""The late background restore as a ComfyUI model patch, for every sampler node and edit model.

``LateRestore.patch(model)`` returns a clone of the MODEL with two wrappers of ComfyUI's own
extension points (``comfy.patcher_extension.WrappersMP``), the way core patches such as Differential
Diffusion ride on a MODEL:

- ``OUTER_SAMPLE`` wraps one sampling run of any guider (KSampler, KSamplerAdvanced,
  SamplerCustom, SamplerCustomAdvanced with CFGGuider, DualCFGGuider, BasicGuider...). It builds
  the run's ``BackgroundBlender`` from the run's own noise and sigmas, and afterwards puts the
  source back on the final latent where the window runs to the end, so the background is exact
  whatever the sampler does between its model calls.
- ``PREDICT_NOISE`` wraps each guided model evaluation: inside the window the model sees the
  source outside the mask at that call's noise level and predicts the source there.

The model's own ``model_sampling`` gives the noise levels (EPS/V: ``x0 + sigma*eps``; flow:
``(1-sigma)*x0 + sigma*eps``) and the window's sigmas, so one patch serves every family.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import comfy.model_management
import comfy.patcher_extension
import comfy.samplers
import torch
from comfy_api.latest import io, ui

from ..sampling import (
    BACKGROUND_MODES,
    BackgroundBlender,
    Window,
    empty_mask_indices,
    latent_mask,
    percent_bounds,
    percent_window,
)
from .validation import ValidatedNode

log = logging.getLogger("grounded-ip2p")

WRAPPER_KEY = "grounded_ip2p.late_restore"
_RUN = "_grounded_ip2p_restore_run"  # the guider attribute that holds the running restore


def check_finite(latent: torch.Tensor, node: str) -> None:
    """A sampled latent with NaN or inf is an error, never a result (an overflow in half precision,
    an extreme guidance scale)."""
    if not torch.isfinite(latent).all():
        raise ValueError(
            f"{node}: the sampled latent has NaN or infinite values, so there is no image to return. "
            f"Lower the guidance (cfg) or load the model in full precision (fp32)."
        )


def model_levels(model_sampling) -> Callable[[float], tuple[float, float]]:
    """``sigma -> (signal, noise)`` read from the model's own ``noise_scaling`` (cached per sigma)."""
    cache: dict[float, tuple[float, float]] = {}
    one, zero = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)

    def levels(sigma: float) -> tuple[float, float]:
        value = cache.get(sigma)
        if value is None:
            s = torch.tensor([float(sigma)], dtype=torch.float64)
            noise = float(model_sampling.noise_scaling(s, one, zero))
            signal = float(model_sampling.noise_scaling(s, zero, one))
            value = cache[sigma] = (signal, noise)
        return value

    return levels


def notify(text: str, warning: bool = False) -> None:
    """Log ``text`` and show it on the node that is running (a sampler node), where ComfyUI can."""
    (log.warning if warning else log.info)(text)
    try:
        from comfy_execution.utils import get_executing_context
        from server import PromptServer

        context = get_executing_context()
        server = getattr(PromptServer, "instance", None)
        if context is not None and server is not None and hasattr(server, "send_progress_text"):
            server.send_progress_text(text, context.node_id)
    except Exception:  # a UI nicety: never let it break a run
        log.debug("could not show the restore summary on the node", exc_info=True)


def _match_source(source: torch.Tensor, shape: torch.Size, node: str) -> torch.Tensor:
    """The source latent shaped like the sampled latent (batch 1 broadcast; a frame axis of 1 allowed)."""
    if source.ndim == len(shape) + 1 and source.shape[2] == 1:
        source = source[:, :, 0]
    elif source.ndim + 1 == len(shape) and shape[2] == 1:
        source = source[:, :, None]
    if source.ndim != len(shape) or source.shape[1] != shape[1] or source.shape[-2:] != shape[-2:]:

        def size(s):
            return f"{s[-1] * 8}x{s[-2] * 8} px ({s[1]} channels, latent {tuple(s)})"

        raise ValueError(
            f"{node}: the source latent is {size(source.shape)} but the sampler's latent is {size(shape)}. "
            f"Encode the source with the model's own VAE from the same scaled image that the latent to "
            f"sample comes from (e.g. after FluxKontextImageScale or the ~1 MP scale of Qwen-Image-Edit), "
            f"or sample the VAE-encoded source itself."
        )
    if source.shape[0] not in (1, shape[0]):
        raise ValueError(
            f"{node}: the source latent has {source.shape[0]} images for a batch of {shape[0]}; "
            f"give one source for all or one per image"
        )
    return source.expand(shape[0], *source.shape[1:])


@dataclass
class RestoreReport:
    """What one run did, for the log, the node and the tests."""

    calls: int = 0  # model calls of the sampler in the window
    calls_total: int = 0
    levels: int = 0  # schedule sigmas in the window
    inversion_calls: int = 0
    final_restore: bool = False
    residual: float = 0.0  # max |final - source| outside the mask before the final restore put it back
    empty: list[int] = field(default_factory=list)
    steps: int = 0

    def summary(self, node: str, window: Window, mode: str) -> tuple[str, bool]:
        """A one-line summary and whether it is a warning."""
        where = f"{self.calls} of {self.calls_total} model calls"
        extra = f", {self.inversion_calls} extra for the inversion" if self.inversion_calls else ""
        if self.empty and self.calls_total == 0:
            return (
                f"{node}: the mask is empty (nothing marked to edit), so the source comes back unchanged. "
                "Draw a mask, or disconnect it for a whole-image edit."
            ), True
        head = f"{node}: "
        if self.empty:
            head += f"image(s) {self.empty} have an empty mask and come back unchanged. "
        if self.calls == 0 and window.to_end:
            return (
                head + f"no model call of this {self.steps}-step schedule falls in the restore window, so the "
                "background was only pasted back on the final latent and the seam is not blended. Start "
                "the window earlier or use more steps."
            ), True
        if self.calls == 0:
            return (
                head + f"no model call of this {self.steps}-step schedule falls in the restore window, so "
                "nothing was restored and the background may differ from the source. Widen the window, "
                "move it, or use more steps."
            ), True
        tail = " and pasted back on the final latent" if self.final_restore else " (the window ends before the end)"
        return head + f"background restored on {where} ({mode}{extra}){tail}.", bool(self.empty)


class _Run:
    """The state of one sampling run: built in OUTER_SAMPLE, used by PREDICT_NOISE, then dropped."""

    def __init__(self, blender: BackgroundBlender, sigmas: torch.Tensor, report: RestoreReport):
        self.blender = blender
        self.schedule = [float(s) for s in sigmas.tolist()]
        self.report = report
        self.on_device = False


class LateRestore:
    """The restore settings of one patch: the source latent, the mask, the window and the mode.

    ``source`` is a LATENT's samples as VAE Encode gives them (ComfyUI's output space); ``mask``
    any MASK (1 = edit), resized to the latent; ``window`` maps the model's ``model_sampling`` to
    the ``Window`` of noise levels. ``node`` names the node in messages.
    """

    def __init__(
        self, source: torch.Tensor, mask: torch.Tensor, window: Callable[[object], Window], mode: str, node: str
    ):
        self.source = source
        self.mask = mask
        self.window = window
        self.mode = mode
        self.node = node
        self.last_report: RestoreReport | None = None
        self.last_summary = ""

    def patch(self, model):
        """A clone of the ModelPatcher ``model`` that restores the background in every sampling run."""
        patched = model.clone()
        for kind in (comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, comfy.patcher_extension.WrappersMP.PREDICT_NOISE):
            patched.remove_wrappers_with_key(kind, WRAPPER_KEY)  # a second restore replaces the first
        patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, self._outer_sample)
        patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.PREDICT_NOISE, WRAPPER_KEY, self._predict_noise)
        return patched

    # -- one sampling run -----------------------------------------------------------------------

    def _start(self, model_patcher, noise, latent_image, sigmas, seed) -> tuple[_Run, torch.Tensor]:
        base = model_patcher.model
        ms = model_patcher.get_model_object("model_sampling")
        shape = latent_image.shape
        source_out = _match_source(self.source.to(torch.float32), shape, self.node)
        try:
            mask = latent_mask(self.mask, shape)
        except ValueError as e:
            raise ValueError(f"{self.node}: {e}.") from None
        if not torch.count_nonzero(noise):  # e.g. KSamplerAdvanced with add_noise off: seed a fixed noise
            noise = torch.randn(shape, generator=torch.Generator().manual_seed(int(seed or 0)), dtype=torch.float32)
        blender = BackgroundBlender(
            base.process_latent_in(source_out),
            mask,
            window=self.window(ms),
            mode=self.mode,
            noise=noise.to(torch.float32),
            levels=model_levels(ms),
        )
        report = RestoreReport(empty=empty_mask_indices(mask), steps=max(len(sigmas) - 1, 0))
        report.levels = len(blender.window_sigmas(sigmas.tolist()))
        return _Run(blender, sigmas, report), source_out

    def _outer_sample(self, executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        guider = executor.class_obj
        shapes = kwargs.get("latent_shapes")
        if shapes is not None and len(shapes) > 1:
            raise ValueError(
                f"{self.node}: this model samples several packed latents at once; the late restore "
                f"supports one latent per image."
            )
        seed = args[3] if len(args) > 3 else kwargs.get("seed")
        with torch.no_grad():
            run, source_out = self._start(guider.model_patcher, noise, latent_image, sigmas, seed)
        if len(run.report.empty) == latent_image.shape[0]:  # nothing to edit anywhere: the source, exactly
            self._finish_report(run)
            return source_out.clone()
        setattr(guider, _RUN, run)
        try:
            out = executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
        finally:
            if getattr(guider, _RUN, None) is run:
                delattr(guider, _RUN)
        with torch.no_grad():
            out = self._restore_final(guider, run, out, source_out)
        self._finish_report(run)
        check_finite(out, self.node)
        return out

    def _restore_final(self, guider, run: _Run, out: torch.Tensor, source_out: torch.Tensor) -> torch.Tensor:
        """Put the source back on the final latent where the window holds its level; empty masks: the source."""
        sigma_last = run.schedule[-1] if run.schedule else 0.0
        blender = run.blender.to(out.device, torch.float32)
        if blender.active(sigma_last):
            ms = guider.model_patcher.get_model_object("model_sampling")
            base = guider.model_patcher.model

            def to_output(x):
                sigma = torch.tensor([sigma_last], device=x.device, dtype=x.dtype)
                return base.process_latent_out(ms.inverse_noise_scaling(sigma, x))

            restored = blender.finish(out, sigma_last, to_output)
            keep = (blender.mask <= 1e-6).to(out)
            run.report.residual = float(((restored - out).detach() * keep).abs().max())
            out = restored
            run.report.final_restore = True
        if run.report.empty:
            out[run.report.empty] = source_out[run.report.empty].to(out)
        return out

    def _finish_report(self, run: _Run) -> None:
        self.last_report = run.report
        text, warning = run.report.summary(self.node, run.blender.window, self.mode)
        self.last_summary = text
        notify(text, warning)

    def _predict_noise(self, executor, x, timestep, model_options={}, seed=None):
        run: _Run | None = getattr(executor.class_obj, _RUN, None)
        if run is None:
            return executor(x, timestep, model_options, seed)
        comfy.model_management.throw_exception_if_processing_interrupted()  # a cancel between model calls
        run.report.calls_total += 1
        sigma = float(timestep.max())
        blender = run.blender
        if not blender.active(sigma):
            return executor(x, timestep, model_options, seed)
        if not run.on_device:
            blender.to(x.device, x.dtype)
            run.on_device = True
        if not blender.prepared:
            guider = executor.class_obj
            sigma_min = float(guider.inner_model.model_sampling.sigma_min)
            run.report.inversion_calls = blender.prepare(
                run.schedule, self._instruction_denoiser(guider, model_options), sigma_min
            )
        run.report.calls += 1
        denoised = executor(blender.blend(x, blender.background(sigma)), timestep, model_options, seed)
        return blender.blend(denoised, blender.source)

    def _instruction_denoiser(self, guider, model_options):
        """The instruction-conditioned model at guidance 1, for the inversion (None in 'noised' mode)."""
        if self.mode != "inversion":
            return None
        positive = guider.conds.get("positive")
        if positive is None:
            raise ValueError(
                f"{self.node}: the 'inversion' background needs a guider with a positive "
                f"conditioning; use 'noised' with this guider."
            )

        def denoise(x, sigma):
            sigma_t = torch.full((x.shape[0],), float(sigma), device=x.device, dtype=x.dtype)
            return comfy.samplers.calc_cond_batch(guider.inner_model, [positive], x, sigma_t, model_options)[0]

        return denoise


def _percent_window(start_percent, end_percent):
    def window(model_sampling):
        return percent_window(start_percent, end_percent, model_sampling.percent_to_sigma)

    return window


class RestoreBackground(ValidatedNode):
    """Grounded late restore for any edit model, as a MODEL patch (like core's Differential Diffusion)."""

    NODE = "Restore Background (Model Patch)"

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GroundedIP2P_RestoreBackground",
            display_name=cls.NODE,
            category="grounded-ip2p",
            description=(
                "Patches an edit model (Qwen-Image-Edit, Flux Kontext, FLUX.2 klein, HiDream-E1, CosXL Edit, "
                "InstructPix2Pix...) so that every sampler node puts the source back outside the mask during the "
                "last part of sampling. The editor plans the edit on the whole image first, and everything outside "
                "the mask comes back as the source latent."
            ),
            inputs=[
                io.Model.Input(
                    "model",
                    tooltip="The edit model to patch; connect the result to KSampler, KSamplerAdvanced, SamplerCustom or a guider (CFGGuider, DualCFGGuider, BasicGuider).",
                ),
                io.Latent.Input(
                    "source",
                    tooltip="The source image encoded with the model's own VAE (VAE Encode), from the same scaled image that the latent to sample comes from.",
                ),
                io.Mask.Input(
                    "mask",
                    optional=True,
                    tooltip="Where to edit (1 = edit), e.g. from SAM Mask. Any size; resized to the latent. One mask for the batch or one per image. Absent or all ones: the model is returned unchanged. All zero: the sampler returns the source.",
                ),
                io.Float.Input(
                    "start_percent",
                    default=0.9,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="Where restoring begins, in ComfyUI's percent of sampling (0 = the first step, 1 = the end), on the model's own noise schedule. 0.9 = the last ~10% of the noise, as Grounded-InstructPix2Pix. Lower it (e.g. 0.7) if the seam shows.",
                ),
                io.Float.Input(
                    "end_percent",
                    default=1.0,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="Where restoring stops. 1.0 = until the end, so the background equals the source latent exactly; lower lets the last steps harmonise the seam.",
                ),
                io.Combo.Input(
                    "background",
                    options=["noised", "inversion"],
                    default="noised",
                    tooltip="noised: the source noised to each model call's level with the run's own noise (no extra model calls). inversion: the source inverted along the model's own ODE with the positive conditioning (one extra model call per window step).",
                ),
            ],
            outputs=[
                io.Model.Output(
                    display_name="MODEL", tooltip="The patched model; its sampler nodes restore the background."
                )
            ],
        )

    @classmethod
    def execute(cls, model, source, start_percent, end_percent, background, mask=None) -> io.NodeOutput:
        try:
            percent_bounds(start_percent, end_percent)
        except ValueError as e:
            raise ValueError(f"{cls.NODE}: {e}") from None
        if background not in BACKGROUND_MODES:
            raise ValueError(f"{cls.NODE}: background must be one of {', '.join(BACKGROUND_MODES)}; got {background!r}")
        if mask is not None and not torch.isfinite(mask).all():
            raise ValueError(
                f"{cls.NODE}: the mask has NaN or infinite values; masks must be numbers from 0 (keep) to 1 (edit)."
            )
        if mask is None or float(mask.min()) >= 1.0:
            text = (
                "no mask: the model is unchanged"
                if mask is None
                else "the mask covers everything: the model is unchanged"
            )
            return io.NodeOutput(model, ui=ui.PreviewText(text))
        restore = LateRestore(
            source["samples"], mask, _percent_window(start_percent, end_percent), background, cls.NODE
        )
        share = float(mask.float().clamp(0, 1).mean())
        end = "the end (background exact)" if end_percent >= 1.0 else f"{end_percent:.2f}"
        text = (
            f"restores outside {100 * (1 - share):.0f}% of the image from {start_percent:.2f} of sampling to {end}, "
            f"{background}"
        )
        return io.NodeOutput(restore.patch(model), ui=ui.PreviewText(text))
