"""The original GroundingDINO model (IDEA-Research's own code), built with random weights for tests.

The pack runs GroundingDINO on transformers' implementation but loads the original checkpoint
files, so the tests need the original model to make those files and to compare outputs with.
Its code comes from the groundingdino-py 0.4.0 source distribution, unpacked by `.ci/run` into
``<repo>/.cache/groundingdino-py-0.4.0`` (or wherever ``GIP2P_GDINO_SRC`` points). That package
cannot be installed or built under transformers 5, so only its model modules are imported, by
path, with the few transformers-5 incompatibilities patched here and nowhere else:

- its BERT wrapper calls BERT helpers that transformers 5 removed (`get_head_mask`,
  `get_extended_attention_mask`) and old embedding/encoder signatures: the wrapper is replaced by
  one doing the same steps with the new signatures (same submodule names, so same keys);
- BERT and its tokenizer come from the hub (`from_pretrained`): they are built from a local
  `BertConfig` and the pack's shipped vocabulary instead;
- two utility modules it imports only for plotting and config files (needing cv2, matplotlib,
  pycocotools, addict, yapf) are stubbed.
"""

from __future__ import annotations

import ast
import contextlib
import os
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SDIST = "groundingdino-py-0.4.0"
VOCAB = REPO / "grounding" / "data" / "bert-base-uncased-vocab.txt"

# The real config files (IDEA-Research/GroundingDINO, groundingdino/config/), as users have them.
SWINT_CFG = """batch_size = 1
modelname = "groundingdino"
backbone = "swin_T_224_1k"
position_embedding = "sine"
pe_temperatureH = 20
pe_temperatureW = 20
return_interm_indices = [1, 2, 3]
backbone_freeze_keywords = None
enc_layers = 6
dec_layers = 6
pre_norm = False
dim_feedforward = 2048
hidden_dim = 256
dropout = 0.0
nheads = 8
num_queries = 900
query_dim = 4
num_patterns = 0
num_feature_levels = 4
enc_n_points = 4
dec_n_points = 4
two_stage_type = "standard"
two_stage_bbox_embed_share = False
two_stage_class_embed_share = False
transformer_activation = "relu"
dec_pred_bbox_embed_share = True
dn_box_noise_scale = 1.0
dn_label_noise_ratio = 0.5
dn_label_coef = 1.0
dn_bbox_coef = 1.0
embed_init_tgt = True
dn_labelbook_size = 2000
max_text_len = 256
text_encoder_type = "bert-base-uncased"
use_text_enhancer = True
use_fusion_layer = True
use_checkpoint = True
use_transformer_ckpt = True
use_text_cross_attention = True
text_dropout = 0.0
fusion_dropout = 0.0
fusion_droppath = 0.1
sub_sentence_present = True
"""
SWINB_CFG = SWINT_CFG.replace('backbone = "swin_T_224_1k"', 'backbone = "swin_B_384_22k"')

# A tiny model in the same format. The original format names its backbone from a fixed list and
# its text encoder by hub name, so sizes below those cannot be written in it: this cfg has no
# `backbone` line (the loader then reads the Swin's geometry from the checkpoint) and the BERT's
# sizes are the checkpoint's too. The hidden size stays 256 (the original code hard-codes 256-wide
# sine embeddings), and heads, points and levels keep the real values so that the same checkpoint
# also loads with no cfg at all.
TINY_CFG = (
    SWINT_CFG.replace(
        'backbone = "swin_T_224_1k"\n', "# no backbone line: a tiny Swin, read from the checkpoint's shapes\n"
    )
    .replace("enc_layers = 6", "enc_layers = 1")
    .replace("dec_layers = 6", "dec_layers = 2")
    .replace("dim_feedforward = 2048", "dim_feedforward = 128")
    .replace("num_queries = 900", "num_queries = 30")
)
TINY_SWIN = {"embed_dim": 32, "depths": [1, 1, 2, 1], "num_heads": [1, 2, 4, 8], "window_size": 7}
TINY_BERT = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 256}
BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}


def source_dir() -> Path:
    """Where the unpacked groundingdino-py sdist is expected."""
    return Path(os.environ.get("GIP2P_GDINO_SRC") or REPO / ".cache" / SDIST)


def require_source() -> Path:
    """The sdist folder; skips (fails under CI=true) when it is missing, saying how to get it."""
    path = source_dir()
    if not (path / "groundingdino" / "models" / "GroundingDINO").is_dir():
        reason = (
            f"the original GroundingDINO code (groundingdino-py 0.4.0's sdist, unpacked) is not at {path}: "
            f"run `pip download groundingdino-py==0.4.0 --no-deps --no-binary :all: -d .cache/ && "
            f"tar -xzf .cache/{SDIST}.tar.gz -C .cache/` in the repository (`.ci/run` does this), "
            "or point GIP2P_GDINO_SRC at an unpacked copy"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def cfg_values(text: str) -> dict:
    """The assignments of a cfg file (plain literals only)."""
    values = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def tokenizer():
    """bert-base-uncased's tokenizer from the shipped vocabulary (transformers 5 takes the file as
    `vocab=`; it ignores `vocab_file=` and leaves a five-token vocabulary)."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab=str(VOCAB), do_lower_case=True)


def _stub_module(name: str, **attrs) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module


class _BertWarperV5(torch.nn.Module):
    """The original `BertModelWarper` under transformers 5: same submodules (so the same
    `bert.embeddings/encoder/pooler` keys) and the same steps: the 3-D sub-sentence mask made
    additive and broadcast over heads, embeddings with GroundingDINO's per-phrase position ids,
    then the encoder. The pooler is kept for the key layout; GroundingDINO never uses it."""

    def __init__(self, bert_model):
        super().__init__()
        self.config = bert_model.config
        self.embeddings = bert_model.embeddings
        self.encoder = bert_model.encoder
        self.pooler = bert_model.pooler

    def forward(self, input_ids, attention_mask, token_type_ids, position_ids, **_unused):
        hidden = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids)
        additive = (1.0 - attention_mask[:, None].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        return {"last_hidden_state": self.encoder(hidden, attention_mask=additive)[0]}


def _original_modules():
    """Imports the original model modules from the sdist (once) and applies the patches above."""
    src = str(require_source())
    if src not in sys.path:
        sys.path.insert(0, src)
    if "groundingdino.util.utils" not in sys.modules:
        _stub_module("groundingdino.util.utils", get_phrases_from_posmap=None)
        _stub_module("groundingdino.util.visualizer", COCOVisualizer=None)
    from groundingdino.models.GroundingDINO import groundingdino as model_module
    from groundingdino.models.GroundingDINO.backbone import backbone as backbone_module
    from groundingdino.models.GroundingDINO.backbone import swin_transformer

    model_module.BertModelWarper = _BertWarperV5
    return model_module, backbone_module, swin_transformer


@contextlib.contextmanager
def _patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def build_original(cfg_text: str, *, tiny: bool = False, seed: int = 0, layout_only: bool = False) -> torch.nn.Module:
    """The original GroundingDINO for `cfg_text`, in eval mode, with seeded random weights.

    `tiny` swaps in TINY_SWIN and TINY_BERT (the cfg format cannot name them); otherwise the
    backbone is the cfg's and BERT is bert-base. Every weight gets a little noise on top of the
    original initialisation, so that no head starts at exactly zero and comparisons mean something.
    `layout_only` skips all initialisation (the values are whatever memory held): for tests of
    keys and shapes, several times faster at full size.
    """
    from transformers import BertConfig, BertModel
    from transformers.initialization import no_init_weights

    model_module, backbone_module, swin_transformer = _original_modules()
    values = cfg_values(cfg_text)
    # Gradient checkpointing is a training memory option (and wants autograd): off for eval.
    values.update(use_checkpoint=False, use_transformer_ckpt=False)
    if tiny:
        values.setdefault("backbone", "swin_T_224_1k")  # the name the original builder accepts
    bert_sizes = TINY_BERT if tiny else BERT_BASE

    def language_model(_name):
        return BertModel(BertConfig(**bert_sizes), add_pooling_layer=True)

    def tiny_swin(_name, pretrain_img_size, **kw):
        return swin_transformer.SwinTransformer(pretrain_img_size=pretrain_img_size, **TINY_SWIN, **kw)

    torch.manual_seed(seed)
    tok = model_module.get_tokenlizer
    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(tok, "get_tokenlizer", lambda _name: tokenizer()))
        stack.enter_context(_patched(tok, "get_pretrained_language_model", language_model))
        if tiny:
            stack.enter_context(_patched(backbone_module, "build_swin_transformer", tiny_swin))
        if layout_only:
            stack.enter_context(no_init_weights())  # turns torch.nn.init's functions into no-ops
        model = model_module.build_groundingdino(SimpleNamespace(**values))
    if not layout_only:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


def original_state_dict(model: torch.nn.Module) -> dict:
    """The state dict as the released checkpoints hold it (every key, shared modules repeated)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
