"""Grounding core of grounded-ip2p (instruction -> phrases -> boxes -> mask): plain PyTorch and
NumPy, no ComfyUI import."""
