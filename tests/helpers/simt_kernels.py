"""Run CUDA kernel sources on the CPU: build a .cu file against the SIMT emulator (tests/helpers/simt/simt.h) with g++ and
launch its kernels on CPU tensors through ctypes. Tests use it to execute kernels/mining.cu where no GPU exists."""
import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch

HEADER = Path(__file__).resolve().parent / "simt" / "simt.h"
KERNEL = re.compile(r'extern "C" __global__ void (\w+)\(')
DYNAMIC_SHARED = re.compile(r"extern __shared__ (\w+) (\w+)\[\];")
SCALARS = {np.int32: ctypes.c_int32, np.int64: ctypes.c_int64, np.uint64: ctypes.c_uint64, np.float32: ctypes.c_float}


def available():
    """True when g++ is on PATH (the emulator needs nothing else)."""
    return shutil.which("g++") is not None


def translate(source):
    """CUDA source -> C++ for the emulator: dynamic shared arrays point into simt::dynamic_shared, and one exported
    `simt_launch_<kernel>(blocks, threads, shared_bytes, schedule, args)` per kernel is appended. Returns (C++, kernel
    names)."""
    names = KERNEL.findall(source)
    body = DYNAMIC_SHARED.sub(r"\1* \2 = reinterpret_cast<\1*>(simt::dynamic_shared.data());", source)
    exports = [f'extern "C" int simt_launch_{name}(int blocks, int threads, size_t shared, unsigned long long seed, '
               f"void** args) {{ return simt::launch({name}, blocks, threads, shared, seed, args); }}" for name in names]
    return "\n".join([body, *exports, ""]), names


class EmulatedModule:
    """The kernels of one .cu file compiled for the emulator (the CPU counterpart of cupy.RawModule)."""

    def __init__(self, source_path, workdir, extra=""):
        """Compile `source_path`, plus the CUDA source `extra` appended to it (test kernels that call its device
        functions), into a shared library under `workdir`; raises RuntimeError with g++'s message."""
        source_path = Path(source_path)
        code, self.names = translate(source_path.read_text() + extra)
        cpp = Path(workdir) / f"{source_path.stem}.simt.cpp"
        cpp.write_text(f'#include "{HEADER}"\n#line 1 "{source_path}"\n{code}')
        library = cpp.with_suffix(".so")
        build = subprocess.run(["g++", "-std=c++17", "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-o",
                                str(library), str(cpp)], capture_output=True, text=True)
        if build.returncode:
            raise RuntimeError(f"g++ could not build {source_path} for the emulator:\n{build.stderr}")
        self._library = ctypes.CDLL(str(library))

    def launch(self, name, blocks, threads, shared_bytes, *args, schedule=0):
        """Run kernel `name` on `blocks` x `threads` threads. Tensor arguments (contiguous, on the CPU) pass their data
        pointer; numpy scalars (int32, int64, uint64, float32) pass by value. `schedule` 0 runs threads round robin,
        another value is the seed of a random warp order (tests/helpers/simt/simt.h). Raises AssertionError when a block
        deadlocks."""
        for a in args:
            if isinstance(a, torch.Tensor):
                assert a.device.type == "cpu" and a.is_contiguous(), f"{name}: tensors must be contiguous CPU tensors"
        values = [ctypes.c_void_p(a.data_ptr()) if isinstance(a, torch.Tensor) else SCALARS[type(a)](a) for a in args]
        pointers = (ctypes.c_void_p * len(values))(*(ctypes.addressof(v) for v in values))
        function = getattr(self._library, f"simt_launch_{name}")
        function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_ulonglong, ctypes.c_void_p]
        if function(blocks, threads, shared_bytes, schedule, pointers):
            raise AssertionError(f"kernel {name} deadlocked: some threads never reached a barrier others wait at")
