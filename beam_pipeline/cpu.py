"""What this machine's CPU can do, from /proc/cpuinfo: the instruction sets int8 depends on."""
from __future__ import annotations

import os
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


#: Families of ONNX Runtime's int8 matrix kernels (MLAS picks one per CPU), best first: a model
#: quantised and checked on one family can round differently on another (u8s8 saturates without
#: VNNI). ``SENTIMENT_CPU_FAMILY`` overrides the detected family (to test the start-up probe).
INT8_FAMILIES = (("amx_int8", "amx"), ("avx512_vnni", "avx512_vnni"), ("avx_vnni", "avx_vnni"),
                 ("avx512bw", "avx512"), ("avx2", "avx2"), ("asimddp", "arm64_dotprod"),
                 ("asimd", "arm64"))
FAMILY_OVERRIDE = "SENTIMENT_CPU_FAMILY"


def int8_family(flags: set[str] | None = None) -> str:
    """The int8 kernel family of this CPU (``SENTIMENT_CPU_FAMILY`` when set), or ``none``."""
    override = os.environ.get(FAMILY_OVERRIDE)
    if override:
        return override
    flags = cpu_flags() if flags is None else flags
    return next((family for flag, family in INT8_FAMILIES if flag in flags), "none")
