"""migc.py: a compiled migc model from Python (ctypes and numpy; nothing to build).

A shared object made by `migc compile` carries the whole model and the C ABI of
runtime/migc.h (docs/abi.md). This module wraps that ABI:

    import migc
    m = migc.Model("libmlp.so", seed=1)
    data = m.data("mnist", data_dir="data")          # migc train's reader and order
    for _ in range(100):
        losses = m.train_step(data.batch(m.step)[0])  # {"mi_c": ..., "disc.loss": ...}
    w = m.variables["G.dense0.weight"]               # a numpy view of the live state
    images = m.generate()                            # latents drawn as migc train draws
    logits, means = m.encode(images)
    m.save("mlp.safetensors")                        # migc sample/eval/train read it

Failures raise migc.Error with the library's status and message. The arrays of
`variables` and `state` share the model's memory: writing them changes the model, and
they are valid while the Model lives. Latents, codes and data are float32 or int32
numpy arrays of the input's shape (`inputs` lists them).
"""
import ctypes as C

import numpy as np

ABI_VERSION = 3
MAX_RANK = 8
STATUS = {0: "MIGC_OK", 1: "MIGC_E_ARG", 2: "MIGC_E_NOMEM", 3: "MIGC_E_IO",
          4: "MIGC_E_FORMAT", 5: "MIGC_E_MISMATCH", 6: "MIGC_E_RANGE", 7: "MIGC_E_MODEL",
          8: "MIGC_E_CPU"}
VAR_KINDS = ("param", "bn_mean", "bn_var", "opt_m", "opt_v", "step", "ema")
INPUT_KINDS = ("data", "latent", "code", "seed", "labels")
DISTS = ("none", "uniform", "normal", "categorical", "bernoulli")
P = C.c_void_p


class Error(Exception):
    """A failed call: status (the migc_status number), its name and the message."""

    def __init__(self, status, message):
        super().__init__("%s: %s" % (STATUS.get(status, status), message))
        self.status, self.message = status, message


class _Var(C.Structure):
    _fields_ = [("name", C.c_char_p), ("kind", C.c_int), ("rank", C.c_int),
                ("shape", C.c_int64 * MAX_RANK), ("numel", C.c_int64), ("offset", C.c_int64),
                ("data", C.POINTER(C.c_float))]


class _Input(C.Structure):
    _fields_ = [("name", C.c_char_p), ("kind", C.c_int), ("dist", C.c_int),
                ("a", C.c_double), ("b", C.c_double), ("pad", C.c_int64), ("dtype", C.c_int),
                ("rank", C.c_int), ("shape", C.c_int64 * MAX_RANK), ("numel", C.c_int64)]


class _Output(C.Structure):
    _fields_ = [("name", C.c_char_p), ("dtype", C.c_int), ("rank", C.c_int),
                ("shape", C.c_int64 * MAX_RANK), ("numel", C.c_int64)]


class _Function(C.Structure):
    _fields_ = [("name", C.c_char_p), ("ninputs", C.c_int), ("inputs", C.POINTER(C.c_int)),
                ("noutputs", C.c_int), ("scratch_bytes", C.c_size_t)]


def _declare(lib):
    """Argument and result types of every function used (ctypes guesses int otherwise)."""
    sig = {
        "migc_abi_version": (C.c_int, []),
        "migc_create": (C.c_int, [C.c_uint64, C.POINTER(P), C.c_char_p, C.c_size_t]),
        "migc_destroy": (None, [P]),
        "migc_last_error": (C.c_char_p, [P]),
        "migc_model_name": (C.c_char_p, [P]),
        "migc_batch": (C.c_int64, [P]),
        "migc_program_hash": (C.c_uint64, [P]),
        "migc_seed": (C.c_uint64, [P]),
        "migc_step": (C.c_int64, [P]),
        "migc_state": (C.POINTER(C.c_float), [P]),
        "migc_state_size": (C.c_int64, [P]),
        "migc_set_threads": (C.c_int, [C.c_int]),
        "migc_var_count": (C.c_int, [P]),
        "migc_var": (C.c_int, [P, C.c_int, C.POINTER(_Var)]),
        "migc_input_count": (C.c_int, [P]),
        "migc_input": (C.c_int, [P, C.c_int, C.POINTER(_Input)]),
        "migc_function_count": (C.c_int, [P]),
        "migc_function": (C.c_int, [P, C.c_int, C.POINTER(_Function)]),
        "migc_function_find": (C.c_int, [P, C.c_char_p]),
        "migc_function_output": (C.c_int, [P, C.c_int, C.c_int, C.POINTER(_Output)]),
        "migc_run": (C.c_int, [P, C.c_int, C.POINTER(P), C.c_int, C.POINTER(P), C.c_int]),
        "migc_train_step": (C.c_int, [P, P, C.c_size_t, C.POINTER(P), C.c_int,
                                      C.POINTER(C.c_float), C.c_int]),
        "migc_draw_input": (C.c_int, [P, C.c_int, C.c_uint32, C.c_uint64, P, C.c_size_t]),
        "migc_save": (C.c_int, [P, C.c_char_p]),
        "migc_load": (C.c_int, [P, C.c_char_p]),
        "migc_data_open": (C.c_int, [P, C.c_int, C.c_char_p, C.c_char_p, C.POINTER(P),
                                     C.c_char_p, C.c_size_t]),
        "migc_data_close": (None, [P]),
        "migc_data_count": (C.c_int64, [P]),
        "migc_data_labelled": (C.c_int, [P]),
        "migc_data_batch": (C.c_int, [P, C.c_uint64, C.c_int64, P, C.c_size_t, P, C.c_size_t]),
        "migc_data_last_error": (C.c_char_p, [P]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args


def _dtype(code):
    return np.int32 if code == 1 else np.float32


class Data:
    """migc train's data for a model (Model.data): batches by step, in its order."""

    def __init__(self, model, spec, data_dir=None, input=-1):
        self._lib, self._model, self._d = model._lib, model, P()
        err = C.create_string_buffer(1024)
        st = self._lib.migc_data_open(model._m, input, spec.encode(),
                                      data_dir.encode() if data_dir else None,
                                      C.byref(self._d), err, len(err))
        if st:
            raise Error(st, err.value.decode(errors="replace"))
        x = model.inputs[input] if input >= 0 else model._train_data_input()
        self.shape = x["shape"]
        self.count = self._lib.migc_data_count(self._d)
        self.labelled = bool(self._lib.migc_data_labelled(self._d))

    def batch(self, step, seed=None):
        """(images, labels) of step `step` for seed (default: the model's), as migc train
        draws them; labels are -1 without labels."""
        images = np.empty(self.shape, np.float32)
        labels = np.empty(self.shape[0], np.int32)
        seed = self._model.seed if seed is None else seed
        st = self._lib.migc_data_batch(self._d, seed, step, images.ctypes.data, images.size,
                                       labels.ctypes.data, labels.size)
        if st:
            raise Error(st, self._lib.migc_data_last_error(self._d).decode(errors="replace"))
        return images, labels

    def close(self):
        if self._d:
            self._lib.migc_data_close(self._d)
            self._d = P()

    def __del__(self):
        self.close()


class Model:
    """A model of a compiled library, initialised from seed as `migc train --seed` does."""

    def __init__(self, path, seed=1, threads=None):
        self._lib = C.CDLL(path)  # -Bsymbolic: several models can share a process
        _declare(self._lib)
        v = self._lib.migc_abi_version()
        if v != ABI_VERSION:
            raise Error(7, "%s speaks ABI version %d, this module %d" % (path, v, ABI_VERSION))
        self._m, err = P(), C.create_string_buffer(1024)
        st = self._lib.migc_create(seed, C.byref(self._m), err, len(err))
        if st:
            raise Error(st, err.value.decode(errors="replace"))
        if threads is not None:
            self._lib.migc_set_threads(threads)
        lib, m = self._lib, self._m
        self.name = lib.migc_model_name(m).decode()
        self.batch = lib.migc_batch(m)
        self.program_hash = lib.migc_program_hash(m)
        self.inputs = []
        for i in range(lib.migc_input_count(m)):
            x = _Input()
            self._check(lib.migc_input(m, i, C.byref(x)))
            self.inputs.append({"name": x.name.decode(), "kind": INPUT_KINDS[x.kind],
                                "dist": DISTS[x.dist], "a": x.a, "b": x.b, "pad": x.pad,
                                "dtype": _dtype(x.dtype), "shape": tuple(x.shape[:x.rank])})
        self.functions = {}
        for k in range(lib.migc_function_count(m)):
            f = _Function()
            self._check(lib.migc_function(m, k, C.byref(f)))
            outs = []
            for o in range(f.noutputs):
                y = _Output()
                self._check(lib.migc_function_output(m, k, o, C.byref(y)))
                outs.append((y.name.decode(), _dtype(y.dtype), tuple(y.shape[:y.rank])))
            self.functions[f.name.decode()] = {"index": k, "inputs": list(f.inputs[:f.ninputs]),
                                               "outputs": outs}

    def _check(self, status):
        if status:
            raise Error(status, self._lib.migc_last_error(self._m).decode(errors="replace"))

    def _train_data_input(self):
        data = [self.inputs[i] for i in self.functions["train_step"]["inputs"]
                if self.inputs[i]["kind"] == "data"]
        return data[0]

    @property
    def seed(self):
        return self._lib.migc_seed(self._m)

    @property
    def step(self):
        """Training steps done."""
        return self._lib.migc_step(self._m)

    @property
    def state(self):
        """The whole state (every variable, one float32 array), shared with the model."""
        n = self._lib.migc_state_size(self._m)
        return np.ctypeslib.as_array(self._lib.migc_state(self._m), shape=(n,))

    def _vars(self):
        for i in range(self._lib.migc_var_count(self._m)):
            v = _Var()
            self._check(self._lib.migc_var(self._m, i, C.byref(v)))
            yield v

    @property
    def variables(self):
        """{name: array} of every state variable (parameters, batchnorm statistics,
        optimizer moments and step counters), each a view of the live state."""
        return {v.name.decode(): np.ctypeslib.as_array(v.data, shape=tuple(v.shape[:v.rank]) or (1,))
                for v in self._vars()}

    def variable_kinds(self):
        """{name: kind} with kind one of param, bn_mean, bn_var, opt_m, opt_v, step, ema."""
        return {v.name.decode(): VAR_KINDS[v.kind] for v in self._vars()}

    def data(self, spec, data_dir=None, input=-1):
        """migc train's data set `spec` (mnist, mnist-test, fashion, fashion-test, or a
        path) shaped for the training step's data input: a Data."""
        return Data(self, spec, data_dir, input)

    def _array(self, value, x):
        a = np.ascontiguousarray(value, dtype=x["dtype"])
        if a.size != int(np.prod(x["shape"])):
            raise Error(1, "input %s takes %s values, got an array of shape %s"
                        % (x["name"], x["shape"], a.shape))
        return a

    def train_step(self, data, **latents):
        """One training step on a batch of real data (an array of the data input's
        shape). Latents and codes are drawn as migc train draws them unless given by
        name (z=..., c=...). Returns {output name: element 0} (losses, MI estimates)."""
        f = self.functions["train_step"]
        x = self._array(data, self._train_data_input())
        arrays, ptrs = [], None
        if latents:
            ptrs = (P * len(f["inputs"]))()
            for j, i in enumerate(f["inputs"]):
                name = self.inputs[i]["name"]
                if name in latents:
                    arrays.append(self._array(latents.pop(name), self.inputs[i]))
                    ptrs[j] = arrays[-1].ctypes.data
            if latents:
                raise Error(1, "train_step has no latent input %s" % ", ".join(latents))
        metrics = (C.c_float * len(f["outputs"]))()
        self._check(self._lib.migc_train_step(self._m, x.ctypes.data, x.size, ptrs,
                                              len(f["inputs"]) if ptrs else 0, metrics,
                                              len(metrics)))
        return {name: float(v) for (name, _, _), v in zip(f["outputs"], metrics)}

    def run(self, function, *inputs):
        """Any function, every input given in its order: its outputs as arrays."""
        f = self.functions[function]
        if len(inputs) != len(f["inputs"]):
            raise Error(1, "%s takes %d inputs, got %d" % (function, len(f["inputs"]),
                                                           len(inputs)))
        arrays = [self._array(v, self.inputs[i]) for v, i in zip(inputs, f["inputs"])]
        outs = [np.empty(shape, dt) for _, dt, shape in f["outputs"]]
        ins = (P * max(1, len(arrays)))(*[a.ctypes.data for a in arrays])
        op = (P * max(1, len(outs)))(*[o.ctypes.data for o in outs])
        self._check(self._lib.migc_run(self._m, f["index"], ins, len(arrays), op, len(outs)))
        return outs

    def draw(self, function, counter=None, stream=2):
        """The inputs `function` takes, drawn as migc train draws them (stream 2, the
        step as counter; migc eval's generated images are stream 10, counter the
        batch); data inputs are zeros."""
        out = []
        for i in self.functions[function]["inputs"]:
            x = self.inputs[i]
            a = np.zeros(x["shape"], x["dtype"])
            if x["kind"] != "data":
                self._check(self._lib.migc_draw_input(
                    self._m, i, stream, self.step if counter is None else counter,
                    a.ctypes.data, a.nbytes))
            out.append(a)
        return out

    def generate(self, *latents):
        """Images from the generator: latents drawn as migc train draws them (counter:
        the step), or all of generate's inputs given in its order."""
        return self.run("generate", *(latents or self.draw("generate")))[0]

    def encode(self, images):
        """encode's outputs for a batch of images (Q's predictions of the codes)."""
        return self.run("encode", images)

    def save(self, path):
        """A checkpoint in migc train's format (written atomically)."""
        self._check(self._lib.migc_save(self._m, str(path).encode()))

    def load(self, path):
        """A checkpoint of this program (migc train's or saved here): state, step, seed."""
        self._check(self._lib.migc_load(self._m, str(path).encode()))

    def close(self):
        if self._m:
            self._lib.migc_destroy(self._m)
            self._m = P()

    def __del__(self):
        self.close()
