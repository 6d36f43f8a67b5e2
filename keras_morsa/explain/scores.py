"""The Grad-CAM report's numbers: one :class:`GroupScores` per (model, image group), and the area comparison.

Reads :class:`keras_morsa.explain.compute.Explained` records (maps already computed) and turns their
per-image values (:mod:`keras_morsa.explain.metrics`) into means with seeded percentile-bootstrap intervals.
:class:`Summary` holds everything ``metrics.json`` says; :meth:`Summary.to_json` is that file's content.
"""

import dataclasses

import numpy as np

from keras_morsa.explain import metrics


@dataclasses.dataclass(frozen=True)
class Deletion:
    """Probability drops when a share of the map's top pixels is removed, against as many at random."""

    fraction: float
    map: metrics.Interval
    random: metrics.Interval
    map_minus_random: metrics.Interval


@dataclasses.dataclass(frozen=True)
class GroupScores:
    """One model's numbers over one group of images (e.g. ``"real_wrong"``: the real test images it got wrong).

    ``mask_energy`` and ``pointing_game`` are None where the images have no masks ("n/a" in the files).
    """

    model: str
    group: str
    n: int
    area: metrics.Interval
    mask_energy: metrics.Interval | None
    pointing_game: metrics.Interval | None
    deletion: tuple[Deletion, ...]

    def to_json(self):
        """The group's entry of ``metrics.json``."""

        def interval(value):
            return "n/a" if value is None else value._asdict()

        return {
            "n": self.n,
            "area": interval(self.area),
            "mask_energy": interval(self.mask_energy),
            "pointing_game": interval(self.pointing_game),
            "deletion": {
                str(d.fraction): {
                    "map": interval(d.map),
                    "random": interval(d.random),
                    "map_minus_random": interval(d.map_minus_random),
                }
                for d in self.deletion
            },
        }


def score_group(explained, outcome, fractions=metrics.DEFAULT_FRACTIONS, seed=0):
    """:class:`GroupScores` of ``explained``'s images with ``outcome`` (``"correct"`` or ``"wrong"``)."""
    members = explained.members(outcome)
    maps = explained.maps[members]

    def interval(values):
        return metrics.bootstrap_interval(values, seed=seed)

    masks = None if explained.masks is None else explained.masks[members]
    deletion = []
    for fraction in fractions:
        drops = {kind: values[members] for kind, values in explained.drops[fraction].items()}
        deletion.append(
            Deletion(
                fraction,
                interval(drops["map"]),
                interval(drops["random"]),
                metrics.paired_difference_interval(drops["map"], drops["random"], seed=seed),
            )
        )
    return GroupScores(
        model=explained.model,
        group=f"{explained.source}_{outcome}",
        n=int(members.sum()),
        area=interval(metrics.area(maps)),
        mask_energy=None if masks is None else interval(metrics.mask_energy(maps, masks)),
        pointing_game=None if masks is None else interval(metrics.pointing_game(maps, masks)),
        deletion=tuple(deletion),
    )


def area_difference(augmented, baseline, seed=0):
    """Paired interval of mean map area, augmented minus baseline, over the same images.

    Args:
        augmented, baseline: lists of :class:`~keras_morsa.explain.compute.Explained`, the same sources in
            the same order for both models.
    """

    def areas(views):
        return np.concatenate([metrics.area(view.maps) for view in views])

    return metrics.paired_difference_interval(areas(augmented), areas(baseline), seed=seed)


def verdict(interval):
    """Whether the augmented maps are narrower: only when the paired interval lies below 0."""
    if interval.n == 0:
        return "not measured (no images)"
    spread = f"{interval.mean:+.3f} [{interval.low:+.3f}, {interval.high:+.3f}], n={interval.n}"
    if interval.high < 0:
        return f"narrower: augmented minus baseline mean area {spread}"
    if interval.low > 0:
        return f"wider: augmented minus baseline mean area {spread}"
    return f"no clear difference: augmented minus baseline mean area {spread} (interval includes 0)"


@dataclasses.dataclass(frozen=True)
class Summary:
    """Everything the report says: settings, the models, one :class:`GroupScores` per (model, group), and
    the area comparison per scope (``"all"``, ``"real"``, ``"generated"`` images)."""

    settings: dict
    models: dict
    class_names: list
    groups: tuple[GroupScores, ...]
    comparison: dict

    @property
    def narrower(self):
        """The answer to "are the augmented model's maps narrower?", over all images."""
        return verdict(self.comparison["all"])

    def to_json(self):
        """The content of ``metrics.json``."""
        groups = {}
        for scores in self.groups:
            groups.setdefault(scores.model, {})[scores.group] = scores.to_json()
        return {
            "settings": self.settings,
            "models": self.models,
            "class_names": self.class_names,
            "groups": groups,
            "comparison": {
                scope: {"area_difference": interval._asdict(), "verdict": verdict(interval)}
                for scope, interval in self.comparison.items()
            },
            "narrower": self.narrower,
        }
