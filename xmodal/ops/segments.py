"""The segment index shared by every pooling op.

A *segment* is any group of rows: the points or pixels of a superpixel, the points of a voxel,
the frustum samples of a BEV cell. :class:`Segments` is built once per sample from the segment id
of every row and reused forward and backward by every op in :mod:`xmodal.ops.segment_reduce` (and
by every feature map pooled with it), so the sort is paid once, not per call.

Layout (CSR over the rows sorted by segment, stable)::

    ids      [N]    int64  segment id of row i, in 0..K-1 (original row order)
    perm     [N]    int64  rows sorted by segment id; rows of segment k are
                           perm[offsets[k]:offsets[k + 1]], in increasing row order
    offsets  [K+1]  int64  CSR row pointer, offsets[0] = 0, offsets[K] = N
    counts   [K]    int64  rows per segment (0 for an empty segment)

Empty segments are allowed (``counts == 0``): pooling gives 0 there. ``ids`` and ``counts`` are
built eagerly; the sort (``perm``, ``offsets``) on first use, so consumers that only scatter by id
(channels-first image pooling) never pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["Segments"]


@dataclass(frozen=True, eq=False)
class Segments:
    """Sorted CSR index of ``N`` rows into ``K = num_segments`` segments (see module docstring).

    Build with :meth:`from_ids`; move with :meth:`to`. Derived tensors the fast paths need
    (``1 / count``, int32 copies of the CSR index) are cached on the object per device and dtype.
    """

    ids: torch.Tensor
    counts: torch.Tensor
    num_segments: int
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_ids(cls, ids: torch.Tensor, num_segments: int | None = None, *, check: bool = True) -> Segments:
        """Index rows by their segment id.

        Args:
            ids: [N] integer segment id of every row, in ``0 .. num_segments - 1``. Any device.
            num_segments: K. Defaults to ``ids.max() + 1`` (0 for N = 0). Larger values add
                empty segments at the end.
            check: validate the ids (one pass, one host sync). Callers that built the ids
                themselves may skip it.

        Raises:
            ValueError: ``ids`` is not a 1-D integer tensor, has a negative id, or an id
                ``>= num_segments``.
        """
        if not isinstance(ids, torch.Tensor):
            raise ValueError(f"Segments.from_ids: ids must be a torch.Tensor, got {type(ids).__name__}")
        if ids.dim() != 1:
            raise ValueError(f"Segments.from_ids: ids must be 1-D [N], got shape {tuple(ids.shape)}")
        if ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.dtype.is_complex:
            raise ValueError(f"Segments.from_ids: ids must be an integer tensor, got {ids.dtype}")
        n = ids.numel()
        ids = ids.long()
        if check or num_segments is None:
            lo, hi = (int(v) for v in torch.aminmax(ids)) if n else (0, -1)
            if lo < 0:
                raise ValueError(f"Segments.from_ids: ids has a negative segment id ({lo}); ids must be >= 0")
            if num_segments is None:
                num_segments = hi + 1
            elif hi >= num_segments:
                raise ValueError(
                    f"Segments.from_ids: ids has segment id {hi} >= num_segments={num_segments}; "
                    "pass a larger num_segments or fix the ids"
                )
        if num_segments < 0:
            raise ValueError(f"Segments.from_ids: num_segments must be >= 0, got {num_segments}")
        counts = torch.bincount(ids, minlength=num_segments)
        if counts.numel() > num_segments:  # only possible with check=False and bad ids
            raise ValueError(f"Segments.from_ids: ids has segment id >= num_segments={num_segments}")
        return cls(ids=ids, counts=counts, num_segments=int(num_segments))

    @classmethod
    def from_offsets(cls, offsets: torch.Tensor) -> Segments:
        """Index rows that are already grouped: segment k is rows ``offsets[k]:offsets[k+1]``
        (e.g. the points of each sample in a batch). ``perm`` is the identity."""
        if offsets.dim() != 1 or offsets.numel() < 1:
            raise ValueError(f"Segments.from_offsets: offsets must be 1-D [K+1], got shape {tuple(offsets.shape)}")
        if offsets.dtype.is_floating_point or offsets.dtype == torch.bool or offsets.dtype.is_complex:
            raise ValueError(f"Segments.from_offsets: offsets must be an integer tensor, got {offsets.dtype}")
        offsets = offsets.long()
        counts = offsets.diff()
        if offsets.numel() > 1 and (int(offsets[0]) != 0 or bool((counts < 0).any())):
            raise ValueError("Segments.from_offsets: offsets must start at 0 and be non-decreasing")
        k = counts.numel()
        n = int(offsets[-1]) if k else 0
        ids = torch.repeat_interleave(torch.arange(k, device=offsets.device), counts, output_size=n)
        perm = torch.arange(n, device=offsets.device)
        seg = cls(ids=ids, counts=counts, num_segments=k)
        seg._cache.update(perm=perm, offsets=offsets, sorted_ids=ids)
        return seg

    @classmethod
    def from_sorted(cls, ids: torch.Tensor, perm: torch.Tensor, sorted_ids: torch.Tensor, counts: torch.Tensor) -> Segments:
        """An index whose stable sort is already known (``perm`` [N], ``sorted_ids = ids[perm]``,
        ``counts`` [K]), e.g. from a voxelizer's key sort, so it is not sorted again. The inputs
        are trusted (no checks): callers derive them from their own sort."""
        offsets = torch.zeros(counts.numel() + 1, dtype=torch.long, device=ids.device)
        torch.cumsum(counts, 0, out=offsets[1:])
        seg = cls(ids=ids, counts=counts, num_segments=counts.numel())
        seg._cache.update(perm=perm, offsets=offsets, sorted_ids=sorted_ids)
        return seg

    # ------------------------------------------------------------------ properties
    @property
    def num_rows(self) -> int:
        """N, the number of rows indexed."""
        return self.ids.numel()

    @property
    def device(self) -> torch.device:
        return self.ids.device

    def _sort(self) -> None:
        sorted_ids, perm = torch.sort(self.ids, stable=True)
        offsets = torch.zeros(self.num_segments + 1, dtype=torch.long, device=self.ids.device)
        torch.cumsum(self.counts, 0, out=offsets[1:])
        self._cache.update(perm=perm, offsets=offsets, sorted_ids=sorted_ids)

    @property
    def perm(self) -> torch.Tensor:
        """[N] int64 rows sorted by segment (stable). Computed on first use (one sort), then kept."""
        if "perm" not in self._cache:
            self._sort()
        return self._cache["perm"]

    @property
    def offsets(self) -> torch.Tensor:
        """[K+1] int64 CSR row pointer into :attr:`perm`."""
        if "offsets" not in self._cache:
            self._sort()
        return self._cache["offsets"]

    @property
    def sorted_ids(self) -> torch.Tensor:
        """[N] ``ids[perm]`` (non-decreasing)."""
        if "sorted_ids" not in self._cache:
            self._sort()
        return self._cache["sorted_ids"]

    def __len__(self) -> int:
        return self.num_segments

    def __repr__(self) -> str:
        return f"Segments(num_rows={self.num_rows}, num_segments={self.num_segments}, device={self.device})"

    # ------------------------------------------------------------------ derived, cached
    def inv_counts(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """[K] ``1 / count`` (0 for empty segments) in ``dtype``."""
        key = ("inv_counts", dtype)
        if key not in self._cache:
            c = self.counts.to(dtype)
            self._cache[key] = torch.where(c > 0, 1.0 / c.clamp(min=1), torch.zeros_like(c))
        return self._cache[key]

    def csr_index(self, small: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``(perm, offsets)`` as int32 when ``small`` and N < 2**31 (what the CPU gather-reduce
        kernels read fastest), else int64."""
        if not small or self.num_rows >= 2**31:
            return self.perm, self.offsets
        key = "csr_int32"
        if key not in self._cache:
            self._cache[key] = (self.perm.int(), self.offsets.int())
        return self._cache[key]

    def cached(self, key, build):
        """Memoize ``build()`` under ``key`` on this index (used by backends for their own metadata)."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    # ------------------------------------------------------------------ movement
    def to(self, device: torch.device | str) -> Segments:
        """The same index on ``device`` (self if already there; caches are rebuilt lazily)."""
        device = torch.device(device)
        if self.ids.device == device:
            return self
        seg = Segments(ids=self.ids.to(device), counts=self.counts.to(device), num_segments=self.num_segments)
        for key in ("perm", "offsets", "sorted_ids"):
            if key in self._cache:
                seg._cache[key] = self._cache[key].to(device)
        return seg
