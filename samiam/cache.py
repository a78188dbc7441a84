"""On-disk cache of SAM image embeddings, per-prompt decoder outputs and generator results.

What is cached, and why:
    * generator results (the raw masks of a whole image, keyed by its pixels, every generator
      setting and the generator code): a re-run that changes only booster parameters makes no
      model call (``CacheSession.load_result``/``store_result``);
    * image embeddings (the encoder's output per tile): the expensive part for SAM ViT models;
    * the mask decoder's outputs per prompt (predicted IoU and the low-resolution mask logits):
      the expensive part for LiteMedSAM, whose box-prompt grid makes hundreds of decoder calls
      per tile. With both cached, a re-run with other thresholds, NMS or booster settings costs
      only the cheap filtering, upsampling, stitching and the booster.

How it plugs in: ``FeatureCache.session(model, ...)`` returns the model with its image encoder
and mask decoder wrapped by caching modules; both generators (point grid, box grid) run unchanged
on it. Keys are content addresses, so a hit is always valid:
    * model fingerprint (name, family and the checkpoint's SHA-256; for unverified checkpoints
      path, size and modification time; for random weights a hash of the weights) → one folder;
    * embedding key = SHA-256 of exactly the tensor the encoder receives (the tile's pixels after
      the model's resize and normalisation), so a change of image, tile size, halo or
      preprocessing gives a new key and the checkpoint a new folder;
    * decoder key = SHA-256 of one prompt's sparse and dense prompt embeddings (what the decoder
      receives besides the image embedding) and the multimask flag.

Storage (one folder per embedding, written atomically: temporary file + rename):
    ``<root>/v1/<model fp>/<key[:2]>/<key>/embedding.npy`` — float32 embedding, loaded as-is;
    ``<root>/v1/<model fp>/<key[:2]>/<key>/decoder/<shard>.npz`` — the outputs of one decoder call;
    ``<root>/v1/<model fp>/results/<key[:2]>/<key>.json`` — a generator result (RLE masks).
Plain ``.npy``/``.npz`` rather than zarr: the entries are small independent blobs addressed by
hash (no large array to chunk, no partial reads), numpy reads them with no extra dependency, and
the rename-into-place write makes every entry either complete or absent when a run is killed.

Logits are stored exactly (float32) but only inside a window: the bounding box of the pixels
whose logit is above ``mask_threshold - margin``, grown by ``DILATE`` pixels; outside it the
logits are replaced by ``FILL``. Every later use of the logits (thresholds at ``mask_threshold``
and ``mask_threshold ± stability offset``, bilinear upsampling whose footprint is < ``DILATE``
low-resolution pixels) then gives bit-identical masks, IoU and stability for any stability offset
below the stored margin (entries with a smaller margin count as misses). This cuts the decoder
entries about 6x (LiteMedSAM box prompts: 15% of the 256 x 256 map on average at margin 8).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samiam.errors import OutputError
from samiam.io.files import atomic_write, check_writable_dir
from samiam.masks import MaskRecord
from samiam.models.build import LoadedModel

CACHE_ENV = "SAMIAM_FEATURE_CACHE"
MAX_GB_ENV = "SAMIAM_FEATURE_CACHE_MAX_GB"
DEFAULT_MAX_GB = 20.0
FORMAT = "v1"
DEFAULT_MARGIN = 8.0  # logit margin kept below the mask threshold (covers stability offsets < 8)
DILATE = 4  # low-res pixels added around the window (bilinear upsampling reads <= 2 pixels away)
FILL = -1000.0  # logit outside the stored window
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)  # a damaged entry is a miss
_WRITE_FAILED = (OSError, OutputError)  # a failed cache write is counted, never raised


def default_cache_dir() -> Path:
    """``$SAMIAM_FEATURE_CACHE``, else ``$XDG_CACHE_HOME/samiam/features`` (``~/.cache/samiam/features``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser()
    return base / "samiam" / "features"


def default_max_bytes() -> int:
    """Size limit of the cache: ``$SAMIAM_FEATURE_CACHE_MAX_GB`` (default 20 GB)."""
    try:
        gb = float(os.environ.get(MAX_GB_ENV, DEFAULT_MAX_GB))
    except ValueError:
        gb = DEFAULT_MAX_GB
    return int(gb * 1e9)


def _sha(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()


def _tensor_bytes(t: torch.Tensor) -> bytes:
    a = t.detach().to("cpu", torch.float32).contiguous().numpy()
    return f"{a.shape}".encode() + a.tobytes()


def model_fingerprint(model: LoadedModel) -> str:
    """A key that changes whenever the weights can differ.

    The checkpoint's verified SHA-256 when known; else the file's path, size and modification
    time (unverified checkpoints: hashing GBs on every run would defeat the cache); else, for
    random weights, a hash of the weights themselves.
    """
    if model.sha256:
        weights = f"sha256:{model.sha256}"
    elif model.checkpoint and Path(model.checkpoint).is_file():
        st = Path(model.checkpoint).stat()
        weights = f"file:{Path(model.checkpoint).resolve()}:{st.st_size}:{st.st_mtime_ns}"
    else:
        h = hashlib.sha256()
        for name, t in sorted(model.sam.state_dict().items()):
            h.update(name.encode())
            h.update(_tensor_bytes(t))
        weights = f"weights:{h.hexdigest()}"
    return _sha(FORMAT.encode(), model.name.encode(), model.family.encode(), weights.encode())[:24]


def _atomic_save(path: Path, save: Callable[[Path], None]) -> int:
    """Write via ``atomic_write``; return the bytes written.

    Raises:
        OSError, OutputError: the entry cannot be written (callers count it, never raise it).
    """
    return atomic_write(path, save).stat().st_size


@dataclass
class CacheStats:
    """Hits and misses of one session (recorded in the run record)."""

    encoder_hits: int = 0
    encoder_misses: int = 0
    decoder_hits: int = 0
    decoder_misses: int = 0
    result_hits: int = 0
    result_misses: int = 0
    bytes_written: int = 0
    write_errors: int = 0

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def logit_windows(low: torch.Tensor, threshold: float, margin: float) -> np.ndarray:
    """Per mask, the window ``(y0, y1, x0, x1)`` that holds every logit above ``threshold - margin``.

    Args:
        low: (N, M, h, w) low-resolution logits.
        threshold: the mask threshold.
        margin: how far below it logits are kept.

    Returns:
        (N, M, 4) int64 windows grown by ``DILATE`` and clipped; empty (0, 0, 0, 0) where none.
    """
    n, m, h, w = low.shape
    above = (low > threshold - margin).cpu()
    rows = above.any(dim=3).numpy()  # (n, m, h)
    cols = above.any(dim=2).numpy()  # (n, m, w)
    has = rows.any(axis=2)
    y0 = np.where(has, rows.argmax(axis=2), 0)
    y1 = np.where(has, h - rows[..., ::-1].argmax(axis=2), 0)
    x0 = np.where(has, cols.argmax(axis=2), 0)
    x1 = np.where(has, w - cols[..., ::-1].argmax(axis=2), 0)
    win = np.stack(
        [
            np.maximum(y0 - DILATE, 0),
            np.minimum(y1 + DILATE, h),
            np.maximum(x0 - DILATE, 0),
            np.minimum(x1 + DILATE, w),
        ],
        axis=-1,
    )
    return np.where(has[..., None], win, 0).astype(np.int64)


class CachingEncoder(torch.nn.Module):
    """The image encoder, answering from the cache when it has seen the same input before."""

    def __init__(self, inner: torch.nn.Module, folder: Path, stats: CacheStats) -> None:
        super().__init__()
        self.inner = inner
        self.img_size = inner.img_size
        self.folder = folder
        self.stats = stats
        self.last_output: torch.Tensor | None = None
        self.last_key: str | None = None

    def entry(self, key: str) -> Path:
        return self.folder / key[:2] / key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = _sha(_tensor_bytes(x))
        path = self.entry(key) / "embedding.npy"
        out = None
        if path.is_file():
            try:
                out = torch.from_numpy(np.load(path, allow_pickle=False)).to(x.device)
                os.utime(path.parent)  # recently used: kept longest by pruning
                self.stats.encoder_hits += 1
            except _UNREADABLE:
                out = None
        if out is None:
            out = self.inner(x)
            self.stats.encoder_misses += 1
            arr = out.detach().cpu().numpy()
            try:
                self.stats.bytes_written += _atomic_save(path, lambda p: np.save(p, arr))
            except _WRITE_FAILED:
                self.stats.write_errors += 1
        self.last_output, self.last_key = out, key
        return out


class CachingDecoder(torch.nn.Module):
    """The mask decoder, answering per prompt from the cache; only missing prompts are decoded."""

    def __init__(
        self,
        inner: torch.nn.Module,
        encoder: CachingEncoder,
        threshold: float,
        margin: float,
        stats: CacheStats,
    ) -> None:
        super().__init__()
        self.inner = inner
        self.encoder = encoder
        self.threshold = threshold
        self.margin = margin
        self.stats = stats
        self._loaded_for: str | None = None
        # prompt key -> (margin, iou (M,), windows (M, 4), window values per mask, low-res shape)
        self._index: dict[str, tuple[float, np.ndarray, np.ndarray, list[np.ndarray], tuple[int, int]]] = {}

    def _embedding_key(self, emb: torch.Tensor) -> str:
        if emb is self.encoder.last_output and self.encoder.last_key is not None:
            return self.encoder.last_key
        return _sha(_tensor_bytes(emb))

    def _load(self, key: str) -> None:
        """Index every stored prompt of this embedding (once per embedding)."""
        if self._loaded_for == key:
            return
        self._loaded_for, self._index = key, {}
        folder = self.encoder.entry(key) / "decoder"
        if not folder.is_dir():
            return
        for shard in sorted(folder.glob("*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as z:
                    keys, iou, win, flat, offs = z["keys"], z["iou"], z["win"], z["flat"], z["offs"]
                    margin, shape = float(z["margin"]), tuple(int(v) for v in z["shape"])
            except _UNREADABLE:
                continue
            n_masks = iou.shape[1]
            for i, k in enumerate(keys.tolist()):
                parts = [flat[offs[i * n_masks + j] : offs[i * n_masks + j + 1]] for j in range(n_masks)]
                self._index[str(k)] = (margin, iou[i], win[i], parts, shape)

    def _prompt_keys(self, sparse: torch.Tensor, dense: torch.Tensor, multimask: bool) -> list[str]:
        flag = b"multi" if multimask else b"single"
        if dense.stride(0) == 0:  # no mask prompts: one shared dense embedding for the batch
            shared = _tensor_bytes(dense[:1])
            return [_sha(flag, _tensor_bytes(sparse[i]), shared) for i in range(len(sparse))]
        return [_sha(flag, _tensor_bytes(sparse[i]), _tensor_bytes(dense[i])) for i in range(len(sparse))]

    def _store(self, emb_key: str, keys: list[str], low: torch.Tensor, iou: torch.Tensor) -> None:
        win = logit_windows(low, self.threshold, self.margin)
        arr = low.detach().cpu().numpy()
        n, m = arr.shape[:2]
        parts = [
            arr[i, j, y0:y1, x0:x1].ravel() for i in range(n) for j in range(m) for (y0, y1, x0, x1) in [win[i, j]]
        ]
        offs = np.concatenate([[0], np.cumsum([p.size for p in parts])]).astype(np.int64)
        payload = {
            "keys": np.array(keys),
            "iou": iou.detach().cpu().numpy().astype(np.float32),
            "win": win,
            "flat": np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32),
            "offs": offs,
            "margin": np.float64(self.margin),
            "shape": np.array(arr.shape[2:], np.int64),
        }
        shard = self.encoder.entry(emb_key) / "decoder" / f"{_sha(*(k.encode() for k in keys))[:32]}.npz"
        try:
            self.stats.bytes_written += _atomic_save(shard, lambda p: np.savez(p, **payload))
        except _WRITE_FAILED:
            self.stats.write_errors += 1
            return
        for i, k in enumerate(keys):
            self._index[k] = (
                self.margin,
                payload["iou"][i],
                win[i],
                [parts[i * m + j] for j in range(m)],
                tuple(arr.shape[2:]),
            )

    def _rebuild(self, entry: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        _, iou, win, parts, (h, w) = entry
        low = np.full((len(parts), h, w), FILL, np.float32)
        for j, (y0, y1, x0, x1) in enumerate(win):
            low[j, y0:y1, x0:x1] = parts[j].reshape(y1 - y0, x1 - x0)
        return torch.from_numpy(low).to(device), torch.from_numpy(np.asarray(iou, np.float32)).to(device)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        emb_key = self._embedding_key(image_embeddings)
        self._load(emb_key)
        keys = self._prompt_keys(sparse_prompt_embeddings, dense_prompt_embeddings, multimask_output)
        hit = [k in self._index and self._index[k][0] >= self.margin for k in keys]
        miss = [i for i, h in enumerate(hit) if not h]
        if miss:
            sel = torch.as_tensor(miss, device=sparse_prompt_embeddings.device)
            dense = (
                dense_prompt_embeddings[sel]
                if dense_prompt_embeddings.stride(0)
                else dense_prompt_embeddings[: len(miss)]
            )
            low, iou = self.inner(
                image_embeddings=image_embeddings,
                image_pe=image_pe,
                sparse_prompt_embeddings=sparse_prompt_embeddings[sel],
                dense_prompt_embeddings=dense,
                multimask_output=multimask_output,
            )
            self._store(emb_key, [keys[i] for i in miss], low, iou)
        self.stats.decoder_hits += len(keys) - len(miss)
        self.stats.decoder_misses += len(miss)
        device = sparse_prompt_embeddings.device
        outs = [self._rebuild(self._index[k], device) for k in keys]
        return torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])


def generator_code_hash() -> str:
    """Hash of the source of the modules that turn model outputs into masks.

    Part of the result key, so that cached generator results never outlive a change of that code
    (embeddings and decoder outputs depend only on the model and need no such key).
    """
    import importlib
    import inspect

    h = hashlib.sha256()
    for name in (
        "samiam.generate.boxes",
        "samiam.generate.points",
        "samiam.generate.tiling",
        "samiam.generate.config",
        "samiam.pipeline",
        "samiam.masks",
    ):
        h.update(inspect.getsource(importlib.import_module(name)).encode())
    return h.hexdigest()


@dataclass
class CacheSession:
    """A model whose encoder and decoder go through the cache, and the session's counters.

    Besides embeddings and decoder outputs, a session stores the generator's final masks of a whole
    image (``load_result``/``store_result``): a re-run that changes only booster parameters then
    skips the generator entirely.
    """

    model: LoadedModel
    stats: CacheStats
    folder: Path

    def record(self) -> dict[str, Any]:
        """The cache part of a run record."""
        return {"dir": str(self.folder), **self.stats.to_dict()}

    def result_key(self, image: np.ndarray, settings: dict[str, Any]) -> str:
        """Key of a generator result: the exact pixels, every generator setting and the generator code."""
        arr = np.ascontiguousarray(image)
        meta = json.dumps(settings, sort_keys=True, default=str).encode()
        return _sha(f"{arr.shape}{arr.dtype}".encode(), arr.tobytes(), meta, generator_code_hash().encode())

    def _result_path(self, key: str) -> Path:
        return self.folder / "results" / key[:2] / f"{key}.json"

    def load_result(self, key: str) -> tuple[list[MaskRecord], dict[str, Any]] | None:
        """The stored masks and info for ``key``, or None (counted as a hit or a miss)."""
        path = self._result_path(key)
        try:
            doc = json.loads(path.read_text())
            records, info = [MaskRecord.from_dict(d) for d in doc["records"]], dict(doc["info"])
            os.utime(path)
        except (OSError, ValueError, KeyError, TypeError):
            self.stats.result_misses += 1
            return None
        self.stats.result_hits += 1
        return records, info

    def store_result(self, key: str, records: list[MaskRecord], info: dict[str, Any]) -> None:
        """Store a generator result (a failed write is counted, never raised)."""
        text = json.dumps({"records": [r.to_dict() for r in records], "info": info})
        try:
            self.stats.bytes_written += _atomic_save(self._result_path(key), lambda p: p.write_text(text))
        except _WRITE_FAILED:
            self.stats.write_errors += 1


class FeatureCache:
    """A folder of cached embeddings and decoder outputs (see the module docstring).

    Args:
        root: the cache folder (created on first write).
        max_bytes: size limit enforced by ``prune`` (least recently used entries go first).
    """

    def __init__(self, root: str | Path | None = None, max_bytes: int | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.max_bytes = default_max_bytes() if max_bytes is None else int(max_bytes)

    def check(self) -> FeatureCache:
        """Create the folder and check it is writable.

        Raises:
            OutputError: it is not.
        """
        check_writable_dir(self.root, "cache folder")
        return self

    def model_folder(self, model: LoadedModel) -> Path:
        return self.root / FORMAT / model_fingerprint(model)

    def session(self, model: LoadedModel, stability_offset: float = 1.0) -> CacheSession:
        """Wrap ``model`` so that its encoder and decoder read and fill this cache.

        Args:
            model: the loaded model (left untouched; the wrapper shares its modules).
            stability_offset: the generator's stability offset; logits are kept at least this far
                (plus a safety margin) below the mask threshold.

        Returns:
            The session: ``.model`` to run the generators on, ``.stats`` for the run record.
        """
        from segment_anything.modeling import Sam

        sam = model.sam
        folder = self.model_folder(model)
        stats = CacheStats()
        margin = max(DEFAULT_MARGIN, float(stability_offset) + DEFAULT_MARGIN / 2)
        encoder = CachingEncoder(sam.image_encoder, folder, stats)
        decoder = CachingDecoder(sam.mask_decoder, encoder, float(sam.mask_threshold), margin, stats)
        proxy = (
            Sam(
                image_encoder=encoder,
                prompt_encoder=sam.prompt_encoder,
                mask_decoder=decoder,
                pixel_mean=sam.pixel_mean.flatten().tolist(),
                pixel_std=sam.pixel_std.flatten().tolist(),
            )
            .to(model.device)
            .eval()
        )
        return CacheSession(dataclasses.replace(model, sam=proxy), stats, folder)

    def size_bytes(self) -> int:
        """Bytes held in the cache folder."""
        root = self.root / FORMAT
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0

    def prune(self, max_bytes: int | None = None) -> int:
        """Delete least recently used entries (embeddings with their decoder outputs, generator
        results) until the cache fits ``max_bytes``.

        Returns:
            Number of entries deleted.
        """
        limit = self.max_bytes if max_bytes is None else max_bytes
        root = self.root / FORMAT
        if not root.is_dir():
            return 0
        entries = []
        for emb in root.glob("*/[0-9a-f][0-9a-f]/*"):  # one folder per embedding
            if emb.is_dir():
                size = sum(p.stat().st_size for p in emb.rglob("*") if p.is_file())
                entries.append((emb.stat().st_mtime, size, emb))
        for res in root.glob("*/results/*/*.json"):  # one file per generator result
            st = res.stat()
            entries.append((st.st_mtime, st.st_size, res))
        total = sum(e[1] for e in entries)
        deleted = 0
        for _, size, entry in sorted(entries, key=lambda e: e[0]):
            if total <= limit:
                break
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            total -= size
            deleted += 1
        return deleted
