# Type stubs of the Rust extension (python/src/lib.rs); the documented API is cryocube/__init__.py.
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str

class CryocubeError(Exception): ...
class InputError(CryocubeError): ...
class StoreError(CryocubeError): ...

def run(args: list[str], progress: Callable[[int, int], Any] | None = None) -> None: ...
def info_json(store: str) -> str: ...
def patch(store: str, patch: str, name: str, dry_run: bool = False, force: bool = False) -> tuple[list[str], list[str]]: ...
def stft(
    samples: npt.NDArray[np.float32],
    fs: float,
    df: float,
    dt: float,
    fmin: float,
    fmax: float | None,
    scale: str,
    window: str,
) -> npt.NDArray[np.float32]: ...

class Server:
    def __init__(
        self,
        store: str,
        host: str = "127.0.0.1",
        port: int = 0,
        cache_mb: int = 256,
        overlays: list[str] = ...,
        sources: str | None = None,
    ) -> None: ...
    @property
    def url(self) -> str: ...
    @property
    def running(self) -> bool: ...
    def stop(self) -> None: ...
