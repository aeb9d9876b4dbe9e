"""IP2PBlendedSampler: InstructPix2Pix with dual guidance and late-window background blending.

The graph it replaces is ComfyUI's native IP2P path (InstructPixToPixConditioning ->
DualCFGGuider -> SamplerCustomAdvanced); with no mask it is that path, call for call. With a mask
the model carries the same late-restore patch as the Restore Background node (``late_restore.py``), so
both share one core, ``sampling.BackgroundBlender``.
"""

from __future__ import annotations

import logging

import comfy.model_base
import comfy.model_management
import comfy.model_sampling
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
import torch
from comfy_api.latest import io, ui
from comfy_extras.nodes_custom_sampler import Guider_DualCFG
from comfy_extras.nodes_ip2p import InstructPixToPixConditioning

from ..sampling import BACKGROUND_MODES, latent_mask, sd_timestep_sigma, timestep_window, window_bounds
from .images import rgb
from .late_restore import LateRestore, check_finite
from .validation import ValidatedNode

log = logging.getLogger("grounded-ip2p")
NODE = "IP2PBlendedSampler"


def _crop_like_ip2p(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize a mask to the image and centre-crop it the way InstructPixToPixConditioning crops the image."""
    if mask.ndim == 2:
        mask = mask[None]
    mask = mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1]).float()
    if tuple(mask.shape[-2:]) != (height, width):
        mask = torch.nn.functional.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
    h8, w8 = height // 8 * 8, width // 8 * 8
    top, left = (height % 8) // 2, (width % 8) // 2
    return mask[:, :, top : top + h8, left : left + w8]


def check_ip2p_model(model) -> None:
    if not isinstance(model.model, comfy.model_base.IP2P):
        channels = model.model.model_config.unet_config.get("in_channels", "?")
        raise ValueError(
            f"{NODE}: the model is not an InstructPix2Pix model (its UNet takes {channels} input channels; "
            f"InstructPix2Pix takes 8: 4 for the noisy latent and 4 for the source image). Load an IP2P "
            f"checkpoint such as instruct-pix2pix-00-22000.safetensors (or a MagicBrush fine-tune) with "
            f"Load Checkpoint. For other edit models, use Grounded Restore (Model Patch) with their own sampler."
        )


def _cancellable(model):
    """A clone of the ModelPatcher whose UNet checks for a cancel after each of its blocks: one
    full-size model call takes seconds on a CPU, and ComfyUI's samplers check only between steps.
    The patches return their input unchanged, so the result is the same."""
    patched = model.clone()
    patched.set_model_input_block_patch(_check_cancel_in)
    patched.set_model_output_block_patch(_check_cancel_out)
    return patched


def _check_cancel_in(h, transformer_options):
    comfy.model_management.throw_exception_if_processing_interrupted()
    return h


def _check_cancel_out(h, hsp, transformer_options):
    comfy.model_management.throw_exception_if_processing_interrupted()
    return h, hsp


def _timestep_window(start_t, end_t):
    """The train-timestep window (of 1000) as the model's noise levels.

    SD1.5/SDXL IP2P have SD's discrete schedule, where ``model_sampling.sigma(t)`` is exact. A
    continuous schedule (CosXL Edit's EDM) has no train timesteps: there ``t`` means SD's noise
    level at ``t``, the same noise-to-signal ratio.
    """

    def window(model_sampling):
        if isinstance(model_sampling, comfy.model_sampling.ModelSamplingDiscrete):
            return timestep_window(start_t, end_t, lambda t: float(model_sampling.sigma(torch.tensor(float(t)))))
        return timestep_window(start_t, end_t, sd_timestep_sigma)

    return window


def blended_sample(
    model,
    positive,
    negative,
    vae,
    image,
    mask,
    seed,
    steps,
    text_cfg,
    image_cfg,
    sampler_name,
    scheduler,
    start_t,
    end_t,
    background,
):
    """Run the edit; returns the LATENT dict and a one-line summary of what was restored.

    Shared by the node and the headless runner.
    """
    check_ip2p_model(model)
    try:
        window_bounds(start_t, end_t)
    except ValueError as e:
        raise ValueError(f"{NODE}: {e}") from None
    image = rgb(image, NODE)
    if image.shape[1] < 8 or image.shape[2] < 8:
        raise ValueError(f"{NODE}: the image is {image.shape[2]}x{image.shape[1]} px; it must be at least 8x8")

    # The same conditioning as the native path: the source latent on the instruction and on the
    # empty-text branch, none on the negative (InstructPix2Pix's three-way guidance).
    cond_pos, cond_mid, zero_latent = InstructPixToPixConditioning.execute(positive, negative, image, vae).args
    source = cond_pos[0][1]["concat_latent_image"]
    latent_image = comfy.sample.fix_empty_latent_channels(model, zero_latent["samples"])
    noise = comfy.sample.prepare_noise(latent_image, seed)

    restore, info = None, "no mask: plain InstructPix2Pix edit of the whole image"
    if mask is not None:
        cropped = _crop_like_ip2p(mask, image.shape[1], image.shape[2])
        try:
            m = latent_mask(cropped, latent_image.shape)
        except ValueError as e:
            raise ValueError(f"{NODE}: {e}. Use a mask batch of 1 or of the image batch size.") from None
        if float(m.min()) < 1.0:
            restore = LateRestore(source, cropped, _timestep_window(start_t, end_t), background, NODE)
            model = restore.patch(model)
        else:
            info = "the mask covers the whole image: plain InstructPix2Pix edit"
            log.info("%s: %s.", NODE, info)

    model = _cancellable(model)
    guider = Guider_DualCFG(model)
    guider.set_conds(cond_pos, cond_mid, negative)
    guider.set_cfg(text_cfg, image_cfg)
    ksampler = comfy.samplers.KSampler(
        model,
        steps=steps,
        device=model.load_device,
        sampler=sampler_name,
        scheduler=scheduler,
        denoise=1.0,
        model_options=model.model_options,
    )
    sigmas = ksampler.sigmas
    comfy.model_management.throw_exception_if_processing_interrupted()  # cancelled while encoding the source
    callback = latent_preview.prepare_callback(model, sigmas.shape[-1] - 1)
    samples = guider.sample(
        noise,
        latent_image,
        comfy.samplers.sampler_object(sampler_name),
        sigmas,
        callback=callback,
        disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED,
        seed=seed,
    )
    check_finite(samples, NODE)
    if restore is not None:
        info = restore.last_summary.removeprefix(f"{NODE}: ")
    return {"samples": samples.to(comfy.model_management.intermediate_device())}, info


class IP2PBlendedSampler(ValidatedNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GroundedIP2P_BlendedSampler",
            display_name="IP2P Blended Sampler",
            category="grounded-ip2p",
            description=(
                "Edits an image with an InstructPix2Pix model and an instruction, changing only the masked "
                "area: the unmasked background is restored from the source during the last denoising "
                "steps (Grounded-InstructPix2Pix). Without a mask it is the plain InstructPix2Pix edit."
            ),
            inputs=[
                io.Model.Input(
                    "model",
                    tooltip="An InstructPix2Pix checkpoint (8-channel UNet), e.g. instruct-pix2pix-00-22000.safetensors.",
                ),
                io.Conditioning.Input(
                    "positive", tooltip="The encoded instruction, e.g. CLIPTextEncode('make the car purple')."
                ),
                io.Conditioning.Input(
                    "negative", tooltip="The encoded negative text; InstructPix2Pix uses the empty string."
                ),
                io.Vae.Input("vae", tooltip="The VAE that encodes the source image (the checkpoint's own)."),
                io.Image.Input(
                    "image",
                    tooltip="The image(s) to edit. Sizes that are not a multiple of 8 are centre-cropped like ComfyUI's InstructPixToPixConditioning.",
                ),
                io.Mask.Input(
                    "mask",
                    optional=True,
                    tooltip="Where to edit (1 = edit). Any size; resized to the latent. One mask for all images or one per image. Absent: plain InstructPix2Pix (whole image). All zero: the image is returned unchanged, as with ComfyUI's own masks.",
                ),
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=0xFFFFFFFFFFFFFFFF,
                    control_after_generate=True,
                    tooltip="The random seed for the initial noise (and for ancestral samplers).",
                ),
                io.Int.Input("steps", default=20, min=1, max=10000, tooltip="Denoising steps. The reference uses 100."),
                io.Float.Input(
                    "text_cfg",
                    default=7.5,
                    min=0.0,
                    max=100.0,
                    step=0.1,
                    round=0.01,
                    tooltip="Text guidance: higher follows the instruction more strongly.",
                ),
                io.Float.Input(
                    "image_cfg",
                    default=1.5,
                    min=0.0,
                    max=100.0,
                    step=0.05,
                    round=0.01,
                    tooltip="Image guidance: higher stays closer to the source image (1.0-1.25 for stronger edits).",
                ),
                io.Combo.Input(
                    "sampler_name",
                    options=comfy.samplers.SAMPLER_NAMES,
                    default="euler_ancestral",
                    tooltip="Any ComfyUI sampler. The reference uses euler_ancestral.",
                ),
                io.Combo.Input(
                    "scheduler",
                    options=comfy.samplers.SCHEDULER_NAMES,
                    default="normal",
                    tooltip="Any ComfyUI scheduler. The reference's schedule is 'normal'.",
                ),
                io.Int.Input(
                    "start_t",
                    default=100,
                    min=0,
                    max=999,
                    tooltip="Train timestep (of 1000) where restoring the background begins. 100 = the last ~10% of the noise; raise it (e.g. 300) if the seam shows artefacts.",
                ),
                io.Int.Input(
                    "end_t",
                    default=1,
                    min=0,
                    max=999,
                    tooltip="Train timestep where restoring stops. 1 (or 0) = until the end, so the background is exactly the source; higher lets the last steps harmonise the seam.",
                ),
                io.Combo.Input(
                    "background",
                    options=list(BACKGROUND_MODES),
                    default="inversion",
                    tooltip="inversion: DDIM-invert the source with the instruction, as the reference (one extra single-branch model call per window step). noised: the source noised to each step's level (no extra calls).",
                ),
            ],
            outputs=[
                io.Latent.Output(display_name="LATENT", tooltip="The edited latent; decode it with VAE Decode."),
                io.String.Output(
                    display_name="info",
                    tooltip="What was restored: the model calls in the window, and a warning when the schedule puts none there.",
                ),
            ],
        )

    @classmethod
    def execute(cls, mask=None, **inputs) -> io.NodeOutput:
        latent, info = blended_sample(mask=mask, **inputs)
        return io.NodeOutput(latent, info, ui=ui.PreviewText(info))
