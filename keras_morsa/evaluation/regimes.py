"""The study's regimes and its plan: which runs a config asks for, each named once.

A run is (architecture, regime, parameter, seed). Regimes:

- ``real``: the real train split only.
- ``traditional``: the real train split with classic augmentation (``config.augment``).
- ``synthetic`` at ratio ``r``: per class all real train images plus ``round(r * n_real)`` synthetic ones.
- ``synthetic_only``: synthetic images only, ``round(config.synthetic_only_ratio * n_real)`` per class
  (the classification accuracy score: train on synthetic, test on real).
- ``traditional+synthetic`` at ratio ``r``: the synthetic mix with classic augmentation on every image.
- ``share`` at ``p`` (``config.shares``, each in (0, 0.5]): every example of every batch is a synthetic image
  with probability ``p``, a real one otherwise (DA-Fusion's random replacement), so real images stay the
  majority of what the classifier sees.
- ``weighted+synthetic`` at ratio ``r``: the synthetic mix with the synthetic rows' loss weighted by
  ``config.synthetic_weight`` and their labels smoothed by ``config.synthetic_label_smoothing`` (real rows
  keep weight 1 and hard labels).
- ``pretrain_synthetic``: the first ``config.pretrain_share`` of the step budget on the ``synthetic_only``
  set, the rest on the real train split (the optimizer state carries over), the same total steps.

The parameter (``Run.ratio``) is the ratio for :data:`RATIO_REGIMES`, the share ``p`` for ``share``, and
``None`` otherwise.

Synthetic sources: a study may read several synthetic folders by name (e.g. ``unfiltered`` and ``filtered``,
from ``bin/generate --filter``); every synthetic regime then runs once per source (``Run.source``; its cell
reads ``synthetic@0.5 (filtered)``), the real and traditional baselines once. One unnamed folder gives the
source ``""`` and the names of the first study. ``Run.split`` is the validation hold-out seed when the study
holds out ``config.validation_share`` of the train split (None otherwise).
"""

import dataclasses
import re

from keras_morsa.errors import UserError

REGIMES = (
    "real",
    "traditional",
    "synthetic",
    "synthetic_only",
    "traditional+synthetic",
    "share",
    "weighted+synthetic",
    "pretrain_synthetic",
)
RATIO_REGIMES = ("synthetic", "traditional+synthetic", "weighted+synthetic")
SHARE_REGIMES = ("share",)
# Every regime but the two real-only baselines reads synthetic images.
SYNTHETIC_REGIMES = tuple(r for r in REGIMES if r not in ("real", "traditional"))
AUGMENTED_REGIMES = ("traditional", "traditional+synthetic")


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run of the sweep; ``ratio`` is the regime's parameter (ratio or share), or None;
    ``source`` the synthetic source's name ("" for one unnamed folder and for the real regimes); ``split`` the
    validation hold-out seed, or None without a validation share."""

    arch: str
    regime: str
    ratio: float | None
    seed: int
    source: str = ""
    split: int | None = None

    @property
    def run_id(self):
        tag = "p" if self.regime in SHARE_REGIMES else "r"
        ratio = "" if self.ratio is None else f"-{tag}{self.ratio:g}"
        source = f"-{self.source}" if self.source else ""
        split = "" if self.split is None else f"-v{self.split}"
        return f"{self.arch}-{self.regime.replace('+', '_')}{ratio}{source}{split}-s{self.seed}"

    @property
    def cell(self):
        """The label shown in reports: ``synthetic@0.5``, ``share@0.1``, ``real``, ``synthetic@0.5 (filtered)``."""
        return cell_name(self.regime, self.ratio, self.source)


def cell_name(regime, ratio, source=""):
    """A cell's label: the regime, ``@`` its parameter, and the synthetic source in brackets when named."""
    name = regime if ratio is None else f"{regime}@{ratio:g}"
    return f"{name} ({source})" if source else name


_SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]*")


def check_sources(names, reference=""):
    """Checks synthetic source names (run ids and file names carry them) and the reference source.

    Args:
        names: the source names in the order given; ``("",)`` for one unnamed folder.
        reference: ``config.reference_source``: the source the others are paired against; "" = the first.

    Returns:
        The reference source's name.

    Raises:
        UserError: a name that is not lower-case letters, digits and ``_`` (starting with a letter), a
            duplicate, or a reference that is not one of the names.
    """
    names = list(names)
    if names != [""]:
        bad = [name for name in names if not _SOURCE_NAME.fullmatch(name)]
        if bad or not names:
            raise UserError(
                f"synthetic source name(s) {bad or names}; expected names of lower-case letters, digits "
                "and _ starting with a letter, e.g. unfiltered=runs/synthetic"
            )
        if len(set(names)) != len(names):
            raise UserError(f"synthetic source names {names} repeat a name; give each folder its own")
    if not reference:
        return names[0]
    if reference not in names:
        raise UserError(
            f"config.reference_source={reference!r} is not a synthetic source; accepted: "
            f"{', '.join(repr(n) for n in names)}"
        )
    return reference


def _parameters(config, regime):
    if regime in RATIO_REGIMES:
        return [float(r) for r in config.ratios]
    if regime in SHARE_REGIMES:
        return [float(p) for p in config.shares]
    return [None]


def plan_runs(config, sources=("",)):
    """All runs of ``config`` in sweep order: architecture, then regime and parameter, then source, then
    validation split, then seed.

    Args:
        config: the study config.
        sources: the synthetic source names (see :func:`check_sources`); the synthetic regimes run once per source.

    Raises:
        UserError: an unknown regime, no seeds, a ratio regime without ratios, a share outside (0, 0.5], a
            ``pretrain_share`` outside (0, 1), a bad source name, or a ``validation_share`` outside [0, 1).
    """
    unknown = [r for r in config.regimes if r not in REGIMES]
    if unknown:
        raise UserError(f"unknown regime(s) {unknown}; accepted: {', '.join(REGIMES)}")
    if not list(config.seeds):
        raise UserError("config.seeds is empty; expected at least one seed")
    if any(r in RATIO_REGIMES for r in config.regimes) and not list(config.ratios):
        raise UserError("config.ratios is empty but a synthetic ratio regime is requested; give ratios > 0")
    for key, values in (("ratios", list(config.ratios)), ("synthetic_only_ratio", [config.synthetic_only_ratio])):
        if not all(_is_positive_number(v) for v in values):
            raise UserError(
                f"config.{key}={getattr(config, key)!r}; expected numbers > 0, e.g. "
                "--config.ratios='(0.5, 1.0)' --config.synthetic_only_ratio=1.0"
            )
    if "share" in config.regimes:
        bad = [p for p in config.shares if not 0.0 < float(p) <= 0.5]
        if bad or not list(config.shares):
            raise UserError(
                f"config.shares={tuple(config.shares)}: the share regime needs shares in (0, 0.5], "
                "so that real images stay the majority"
            )
    if "pretrain_synthetic" in config.regimes and not 0.0 < float(config.pretrain_share) < 1.0:
        raise UserError(f"config.pretrain_share={config.pretrain_share}; expected a fraction in (0, 1)")
    check_sources(sources)
    if not 0.0 <= float(config.validation_share) < 1.0 or not list(config.validation_seeds):
        raise UserError(
            f"config.validation_share={config.validation_share}, config.validation_seeds="
            f"{tuple(config.validation_seeds)}; expected a share in [0, 1) (0: no validation share) "
            "and at least one seed"
        )
    held_out = [int(v) for v in config.validation_seeds] if float(config.validation_share) > 0 else [None]
    runs = []
    for arch in config.archs:
        for regime in config.regimes:
            for parameter in _parameters(config, regime):
                for source in sources if regime in SYNTHETIC_REGIMES else ("",):
                    runs.extend(
                        Run(arch, regime, parameter, int(seed), source, split)
                        for split in held_out
                        for seed in config.seeds
                    )
    return runs


def _is_positive_number(value):
    try:
        return not isinstance(value, (bool, str)) and float(value) > 0
    except (TypeError, ValueError):
        return False
