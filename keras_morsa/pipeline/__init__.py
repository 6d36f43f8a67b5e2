"""The whole pipeline on one folder in one resumable call (``bin/run_pipeline``): :mod:`.stages` runs the
stages, :mod:`.index` renders the workdir's ``index.html``."""
