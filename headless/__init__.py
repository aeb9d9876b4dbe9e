"""The ``grounded-ip2p`` command: the pack without ComfyUI's UI.

- ``cli``: the command line (``parse``, ``run``, ``models``);
- ``run_workflow``: run an example workflow on an image, in-process or on a ComfyUI server;
- ``ui_to_api``: UI-format workflows (what ComfyUI saves) to API-format prompts;
- ``model_catalog``: the model files each workflow needs, where they go, and their downloads;
- ``comfy_session``: starting ComfyUI from Python, on old and new ComfyUI alike.
"""
