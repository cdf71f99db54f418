"""What this machine's CPU can do, from /proc/cpuinfo: the instruction sets int8 depends on."""
from __future__ import annotations

import platform
from pathlib import Path

CPUINFO = "/proc/cpuinfo"
#: The flags that change ONNX Runtime's int8 and fp32 kernels (x86: AVX2, AVX-512, VNNI, AMX).
RELEVANT_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
                  "avx512_bf16", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm")


def _cpuinfo_field(names: tuple[str, ...], cpuinfo: str) -> str | None:
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(names):
            return line.split(":", 1)[1].strip()
    return None


def cpu_flags(cpuinfo: str = CPUINFO) -> set[str]:
    """All instruction-set flags of this CPU (empty where /proc/cpuinfo does not exist)."""
    return set((_cpuinfo_field(("flags", "Features"), cpuinfo) or "").split())


def cpu_model(cpuinfo: str = CPUINFO) -> str:
    """The CPU's model name (or the platform's processor string)."""
    return (_cpuinfo_field(("model name",), cpuinfo) or platform.processor()
            or platform.machine())


def cpu_description(cpuinfo: str = CPUINFO) -> dict[str, object]:
    """Machine, model and the `RELEVANT_FLAGS` this CPU has: what a benchmark or a parity
    check records about where it ran."""
    flags = cpu_flags(cpuinfo)
    return {"machine": platform.machine(), "model": cpu_model(cpuinfo),
            "flags": [flag for flag in RELEVANT_FLAGS if flag in flags]}
