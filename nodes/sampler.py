"""IP2PBlendedSampler: InstructPix2Pix with dual guidance and late-window background blending.

The graph it replaces is ComfyUI's native IP2P path (InstructPixToPixConditioning ->
DualCFGGuider -> SamplerCustomAdvanced); with no mask it gives the same latent. The blending core
is ``sampling.BackgroundBlender``; this module only wires it into ComfyUI's guider.
"""

from __future__ import annotations

import logging

import torch
from typing_extensions import override

import comfy.model_base
import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
from comfy_api.latest import io
from comfy_extras.nodes_custom_sampler import Guider_DualCFG
from comfy_extras.nodes_ip2p import InstructPixToPixConditioning

from .images import rgb
from ..sampling import BACKGROUND_MODES, BackgroundBlender, empty_mask_indices, latent_mask, window_bounds

log = logging.getLogger("grounded-ip2p")
NODE = "IP2PBlendedSampler"


class BlendedDualCFGGuider(Guider_DualCFG):
    """ComfyUI's IP2P dual-CFG guider that restores the background inside the blending window.

    Outside the window it is exactly ``Guider_DualCFG``; inside, the model sees the source
    outside the mask and predicts it there (see ``BackgroundBlender``).
    """

    blender: BackgroundBlender | None = None
    inversion_calls = 0

    def _denoise_instruction_only(self, model_options):
        positive = self.conds.get("positive")

        def denoise(x, sigma):
            sigma_t = torch.full((x.shape[0],), float(sigma), device=x.device, dtype=x.dtype)
            return comfy.samplers.calc_cond_batch(self.inner_model, [positive], x, sigma_t, model_options)[0]

        return denoise

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        blender = self.blender
        sigma = float(timestep.max())
        if blender is None or not blender.active(sigma):
            return super().predict_noise(x, timestep, model_options, seed)
        if not blender.prepared:
            blender.to(x.device, x.dtype)
            schedule = model_options.get("transformer_options", {}).get("sample_sigmas")
            sigma_min = float(self.inner_model.model_sampling.sigma_min)
            self.inversion_calls = blender.prepare(
                schedule.tolist() if schedule is not None else [sigma],
                self._denoise_instruction_only(model_options),
                sigma_min,
            )
        x_in = blender.blend(x, blender.background(sigma))
        denoised = super().predict_noise(x_in, timestep, model_options, seed)
        return blender.blend(denoised, blender.source)


def _crop_like_ip2p(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize a mask to the image and centre-crop it the way InstructPixToPixConditioning crops the image."""
    if mask.ndim == 2:
        mask = mask[None]
    mask = mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1]).float()
    if tuple(mask.shape[-2:]) != (height, width):
        mask = torch.nn.functional.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
    h8, w8 = height // 8 * 8, width // 8 * 8
    top, left = (height % 8) // 2, (width % 8) // 2
    return mask[:, :, top:top + h8, left:left + w8]


def check_ip2p_model(model) -> None:
    if not isinstance(model.model, comfy.model_base.IP2P):
        channels = model.model.model_config.unet_config.get("in_channels", "?")
        raise ValueError(
            f"{NODE}: the model is not an InstructPix2Pix model (its UNet takes {channels} input channels; "
            f"InstructPix2Pix takes 8: 4 for the noisy latent and 4 for the source image). Load an IP2P "
            f"checkpoint such as instruct-pix2pix-00-22000.safetensors (or a MagicBrush fine-tune) with "
            f"Load Checkpoint."
        )


def blended_sample(model, positive, negative, vae, image, mask, seed, steps, text_cfg, image_cfg,
                   sampler_name, scheduler, start_t, end_t, background):
    """Run the edit and return the LATENT dict; shared by the node and the headless runner."""
    check_ip2p_model(model)
    try:
        window_bounds(start_t, end_t)
    except ValueError as e:
        raise ValueError(f"{NODE}: {e}") from None
    image = rgb(image, NODE)
    if image.shape[1] < 8 or image.shape[2] < 8:
        raise ValueError(f"{NODE}: the image is {image.shape[2]}x{image.shape[1]} px; it must be at least 8x8")

    # The same conditioning as the native path: the source latent on the instruction and on the
    # empty-text branch, none on the negative (InstructPix2Pix's three-way guidance, reference §3).
    cond_pos, cond_mid, zero_latent = InstructPixToPixConditioning.execute(positive, negative, image, vae).args
    source = cond_pos[0][1]["concat_latent_image"]
    latent_image = comfy.sample.fix_empty_latent_channels(model, zero_latent["samples"])
    noise = comfy.sample.prepare_noise(latent_image, seed)

    guider = BlendedDualCFGGuider(model)
    guider.set_conds(cond_pos, cond_mid, negative)
    guider.set_cfg(text_cfg, image_cfg)

    if mask is not None:
        try:
            m = latent_mask(_crop_like_ip2p(mask, image.shape[1], image.shape[2]), latent_image.shape)
        except ValueError as e:
            raise ValueError(f"{NODE}: {e}. Use a mask batch of 1 or of the image batch size.") from None
        empty = empty_mask_indices(m)
        if empty:
            log.warning("%s: the mask of image(s) %s is empty (nothing marked to edit); those images are "
                        "returned unchanged. Draw a mask, or disconnect it for a whole-image edit.", NODE, empty)
        if len(empty) == image.shape[0]:
            return {"samples": source.to(comfy.model_management.intermediate_device())}
        if float(m.min()) < 1.0:
            ms = model.get_model_object("model_sampling")
            guider.blender = BackgroundBlender(
                model.model.process_latent_in(source).to(latent_image), m,
                start_t=start_t, end_t=end_t, mode=background, noise=noise,
                sigma_to_t=lambda s: float(ms.timestep(torch.tensor([s])).item()),
            )
        else:
            log.info("%s: the mask covers the whole image; plain InstructPix2Pix edit.", NODE)
    else:
        empty = []

    ksampler = comfy.samplers.KSampler(model, steps=steps, device=model.load_device, sampler=sampler_name,
                                       scheduler=scheduler, denoise=1.0, model_options=model.model_options)
    sigmas = ksampler.sigmas
    callback = latent_preview.prepare_callback(model, sigmas.shape[-1] - 1)
    samples = guider.sample(noise, latent_image, comfy.samplers.sampler_object(sampler_name), sigmas,
                            callback=callback, disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    if empty:  # exactly the source, whatever the window (a late end_t would let it drift)
        samples[empty] = source[empty].to(samples)
    if guider.blender is not None:
        log.info("%s: background restored on %d model calls in the window (%s, %d extra calls).", NODE,
                 sum(guider.blender.active(s) for s in sigmas[:-1].tolist()), background, guider.inversion_calls)
    return {"samples": samples.to(comfy.model_management.intermediate_device())}


class IP2PBlendedSampler(io.ComfyNode):
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
                io.Model.Input("model", tooltip="An InstructPix2Pix checkpoint (8-channel UNet), e.g. instruct-pix2pix-00-22000.safetensors."),
                io.Conditioning.Input("positive", tooltip="The encoded instruction, e.g. CLIPTextEncode('make the car purple')."),
                io.Conditioning.Input("negative", tooltip="The encoded negative text; InstructPix2Pix uses the empty string."),
                io.Vae.Input("vae", tooltip="The VAE that encodes the source image (the checkpoint's own)."),
                io.Image.Input("image", tooltip="The image(s) to edit. Sizes that are not a multiple of 8 are centre-cropped like ComfyUI's InstructPixToPixConditioning."),
                io.Mask.Input("mask", optional=True, tooltip="Where to edit (1 = edit). Any size; resized to the latent. One mask for all images or one per image. Absent: plain InstructPix2Pix (whole image). All zero: the image is returned unchanged, as with ComfyUI's own masks."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True, tooltip="The random seed for the initial noise (and for ancestral samplers)."),
                io.Int.Input("steps", default=20, min=1, max=10000, tooltip="Denoising steps. The reference uses 100."),
                io.Float.Input("text_cfg", default=7.5, min=0.0, max=100.0, step=0.1, round=0.01, tooltip="Text guidance: higher follows the instruction more strongly."),
                io.Float.Input("image_cfg", default=1.5, min=0.0, max=100.0, step=0.05, round=0.01, tooltip="Image guidance: higher stays closer to the source image (1.0-1.25 for stronger edits)."),
                io.Combo.Input("sampler_name", options=comfy.samplers.SAMPLER_NAMES, default="euler_ancestral", tooltip="Any ComfyUI sampler. The reference uses euler_ancestral."),
                io.Combo.Input("scheduler", options=comfy.samplers.SCHEDULER_NAMES, default="normal", tooltip="Any ComfyUI scheduler. The reference's schedule is 'normal'."),
                io.Int.Input("start_t", default=100, min=0, max=999, tooltip="Train timestep (of 1000) where restoring the background begins. 100 = the last ~10% of the noise; raise it (e.g. 300) if the seam shows artefacts."),
                io.Int.Input("end_t", default=1, min=0, max=999, tooltip="Train timestep where restoring stops. 1 (or 0) = until the end, so the background is exactly the source; higher lets the last steps harmonise the seam."),
                io.Combo.Input("background", options=list(BACKGROUND_MODES), default="inversion", tooltip="inversion: DDIM-invert the source with the instruction, as the reference (one extra single-branch model call per window step). noised: the source noised to each step's level (no extra calls)."),
            ],
            outputs=[io.Latent.Output(display_name="LATENT", tooltip="The edited latent; decode it with VAE Decode.")],
        )

    @classmethod
    def execute(cls, model, positive, negative, vae, image, seed, steps, text_cfg, image_cfg, sampler_name,
                scheduler, start_t, end_t, background, mask=None) -> io.NodeOutput:
        return io.NodeOutput(blended_sample(model, positive, negative, vae, image, mask, seed, steps, text_cfg,
                                            image_cfg, sampler_name, scheduler, start_t, end_t, background))
