"""The ``grounded-ip2p`` command: the pack without ComfyUI's UI.

- ``cli``: the command line (``parse``, ``run``, ``models``);
- ``run_workflow``: run an example workflow on an image, on a ComfyUI server (a running one, or the
  local ComfyUI's main.py started for the run);
- ``ui_to_api``: UI-format workflows (what ComfyUI saves) to API-format prompts;
- ``model_catalog``: the model files each workflow needs and where they go;
- ``downloads``: fetching catalog files (the pack's only network use, on request);
- ``progress``: the terminal progress bar;
- ``comfy_session``: starting ComfyUI from Python (its server, or in-process for tests), on old
  and new ComfyUI alike.
"""
