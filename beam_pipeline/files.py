"""Files on any Beam file system (local, ``gs://``, ...): open, match, write atomically."""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


def open_file(path: str) -> BinaryIO:
    """Opens a file as stored (no decompression guessed from its name)."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def match_files(pattern: str) -> list[str]:
    """Paths matching a glob, sorted; empty when none match. Local paths come back absolute, so
    that ids derived from them do not depend on the working folder (a bare relative glob such as
    ``dump-*.parquet`` is made absolute first: Beam's local file system matches nothing for it)."""
    local = FileSystems.get_scheme(pattern) is None
    if local:
        pattern = os.path.abspath(os.path.expanduser(pattern))
    return sorted(os.path.abspath(metadata.path) if local else metadata.path
                  for result in FileSystems.match([pattern]) for metadata in result.metadata_list)


def write_atomically(path: str, write: Callable[[BinaryIO], None]) -> str:
    """Writes ``path`` with ``write(handle)`` under a temporary name, then renames it: the file
    appears whole or not at all, and a retried writer replaces its own file. Returns ``path``."""
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    with FileSystems.create(temporary, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        write(handle)
    FileSystems.rename([temporary], [path])
    return path
