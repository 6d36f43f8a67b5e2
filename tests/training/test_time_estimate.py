"""train_gan's time estimate: measured on the running machine after the first logged interval, printed once."""

import pytest

from keras_morsa.training import callbacks as cbs


class _Clock:
    """A fake ``time.perf_counter``: the run's first step takes 10 s (tracing), later ones ``per_step``."""

    def __init__(self, monkeypatch, per_step):
        self.now, self.per_step, self.steps = 0.0, per_step, 0
        monkeypatch.setattr(cbs.time, "perf_counter", lambda: self.now)

    def drive(self, estimate, epochs, steps_per_epoch):
        estimate.set_params({"steps": steps_per_epoch})
        for epoch in epochs:
            estimate.on_epoch_begin(epoch)
            for batch in range(steps_per_epoch):
                self.now += 10.0 if self.steps == 0 else self.per_step
                self.steps += 1
                estimate.on_train_batch_end(batch)
            estimate.on_epoch_end(epoch)


def test_prints_the_steady_rate_of_the_first_interval_and_the_time_left_once(monkeypatch):
    lines = []
    estimate = cbs.TimeEstimate(3050, "jaw", "AMD EPYC, 2 cores", write=lines.append)
    _Clock(monkeypatch, 0.2).drive(estimate, range(3), steps_per_epoch=50)
    # Steps 2-50 at 0.2 s (step 1's 10 s of tracing left out); 3000 steps left after the first interval.
    assert estimate.seconds_per_step == pytest.approx(0.2)
    assert lines == [
        "jaw: 0.2 s/step measured over steps 2-50 on this machine (AMD EPYC, 2 cores): the remaining 3000 "
        "steps take about 10 min"
    ]


def test_a_one_step_interval_is_measured_to_the_next_and_a_short_rest_reads_in_seconds(monkeypatch):
    lines = []
    estimate = cbs.TimeEstimate(14, "disc", "cpu", write=lines.append)
    clock = _Clock(monkeypatch, 0.5)
    # A run resumed at step 10 that logs every step: epochs 10, 11, ... of one step each.
    clock.drive(estimate, [10], steps_per_epoch=1)
    assert lines == [] and estimate.seconds_per_step is None
    clock.drive(estimate, [11, 12], steps_per_epoch=1)
    assert estimate.seconds_per_step == pytest.approx(0.5)
    assert lines == [
        "disc: 0.5 s/step measured over step 12 on this machine (cpu): the remaining 2 steps take about 1 s"
    ]
