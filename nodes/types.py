"""The pack's own socket types. Every name carries the GIP2P_ prefix: other packs register
SAM_MODEL, BBOX, SEGS... with other payloads, and a shared name lets ComfyUI connect sockets
whose data the other side cannot read."""

from comfy_api.latest import io

GroundingDinoModel = io.Custom("GIP2P_GROUNDING_DINO")  # nodes.models.ManagedModel of grounding.gdino.GroundingDino
SamModel = io.Custom("GIP2P_SAM")  # ManagedModel of grounding.sam.SamModel
ClipModel = io.Custom("GIP2P_CLIP")  # ManagedModel of grounding.clip_score.ClipScorer
Phrases = io.Custom("GIP2P_PHRASES")  # grounding.phrases.PhraseSet
Boxes = io.Custom("GIP2P_BOXES")  # list[grounding.detections.Detections], one per image
