"""What the machine's CPU can do, for choosing kernels and dtype policies and for naming it beside a figure.

CPU kinds differ between machines of the same size: some have AVX-512 and bf16 instructions (``avx512_bf16``,
``amx_bf16``), some only AVX2, and the same code can run 2x apart. bfloat16 compute is fast only with bf16
instructions; without them it is emulated, with no gain and sometimes a large loss
(:data:`BF16_EMULATED_COST`). Read from ``/proc/cpuinfo`` (Linux); elsewhere the flags are unknown (empty).
"""

import dataclasses
import os
from pathlib import Path

#: The instruction-set flags reported, in print order.
FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
BF16_FEATURES = ("avx512_bf16", "amx_bf16")


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    """The CPU model name, the cores this process may use, and which of :data:`FEATURES` it has."""

    model: str
    cores: int
    flags: frozenset

    @property
    def has_bf16(self):
        """True when the CPU has bfloat16 instructions (AVX512-BF16 or AMX-BF16)."""
        return any(flag in self.flags for flag in BF16_FEATURES)

    def describe(self):
        """One line, e.g. ``AMD EPYC, 2 cores, avx2 yes, avx512f no, avx512_bf16 no, amx_bf16 no``."""
        features = ", ".join(f"{name} {'yes' if name in self.flags else 'no'}" for name in FEATURES)
        return f"{self.model}, {self.cores} cores, {features}"


def cpu_info(cpuinfo="/proc/cpuinfo"):
    """Reads the CPU's model and features (from ``cpuinfo``, a path; missing: model "unknown", no flags)."""
    model, flags = "unknown", set()
    path = Path(cpuinfo)
    text = path.read_text(errors="replace") if path.is_file() else ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return CpuInfo(model=model, cores=cores, flags=frozenset(flags) & frozenset(FEATURES))


#: What mixed_bfloat16 cost against float32 per CPU-config FastGAN iteration on CPUs without bf16 instructions
#: (benchmarks/fastgan_step.py --policies=float32,mixed_bfloat16, 2-core AMD EPYC machines with AVX2 only).
BF16_EMULATED_COST = (
    "no gain: 1.0x the float32 CPU time on TensorFlow and torch on one such machine, 7.6x the "
    "wall time on TensorFlow on another"
)
