"""Hostile cases of `benchmarks/reliability.py`, one module per area.

Each module has ``run_cases(workdir: Path, bundle: str) -> list[dict]``: it runs every hostile
case of its area through the real command and returns one dict per case with the keys of
`benchmarks.reliability.CASE_KEYS`, counts measured from what the command wrote.
"""
