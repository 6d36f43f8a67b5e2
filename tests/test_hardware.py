"""keras_morsa.hardware: the CPU's model and instruction-set features, read from a cpuinfo file."""

from keras_morsa import hardware

_CPUINFO = """processor\t: 0
model name\t: Example CPU 9000
flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 sha_ni

processor\t: 1
model name\t: Example CPU 9000
flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 sha_ni
"""


def test_reads_the_model_and_only_the_reported_features(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(_CPUINFO)
    info = hardware.cpu_info(path)
    assert info.model == "Example CPU 9000"
    assert info.flags == {"avx2", "avx512f", "avx512_bf16"}
    assert info.has_bf16 and info.cores >= 1
    assert info.describe().startswith("Example CPU 9000, ")
    assert info.describe().endswith("avx2 yes, avx512f yes, avx512_bf16 yes, amx_bf16 no")


def test_avx2_only_has_no_bf16_and_a_missing_file_is_unknown(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("model name\t: Old CPU\nflags\t\t: fpu avx2\n")
    assert not hardware.cpu_info(path).has_bf16
    assert hardware.cpu_info(tmp_path / "amx").flags == frozenset()
    (tmp_path / "amx").write_text("flags\t\t: amx_bf16 amx_tile\n")
    assert hardware.cpu_info(tmp_path / "amx").has_bf16
    missing = hardware.cpu_info(tmp_path / "nothing")
    assert missing.model == "unknown" and missing.flags == frozenset() and not missing.has_bf16
