"""so_two_models.py: so_two_models.c's "global" mode from Python ctypes, the way a
Python user loads two compiled models (issue 18): every library CDLL'd with
RTLD_GLOBAL first, then each driven and printed as the C host prints it.

    python3 so_two_models.py LIB...
"""
import ctypes as C
import struct
import sys

P = C.c_void_p


def bits(v):
    return "%08x" % struct.unpack("<I", struct.pack("<f", v))[0]


def drive(lib):
    lib.migc_model_name.restype = C.c_char_p
    lib.migc_batch.restype = C.c_int64
    lib.migc_state_size.restype = C.c_int64
    lib.migc_program_hash.restype = C.c_uint64
    lib.migc_last_error.restype = C.c_char_p
    for f in ("migc_model_name", "migc_batch", "migc_state_size", "migc_program_hash",
              "migc_last_error", "migc_destroy"):
        getattr(lib, f).argtypes = [P]
    lib.migc_create.argtypes = [C.c_uint64, C.POINTER(P), C.c_char_p, C.c_size_t]
    lib.migc_train_step.argtypes = [P, C.POINTER(C.c_float), C.c_size_t, P, C.c_int, P, C.c_int]
    lib.migc_metric.argtypes = [P, C.c_int, P, C.POINTER(C.c_float)]
    lib.migc_generate.argtypes = [P, P, C.c_int, C.POINTER(C.c_float), C.c_size_t]
    m, err = P(), C.create_string_buffer(512)
    if lib.migc_create(1, C.byref(m), err, len(err)):
        sys.exit("cannot create: " + err.value.decode())
    line = "%s batch %d state %d hash %016x" % (
        lib.migc_model_name(m).decode(), lib.migc_batch(m), lib.migc_state_size(m),
        lib.migc_program_hash(m))
    # input 0 is the images, [batch, 1, 28, 28], in every model here
    n = lib.migc_batch(m) * 784
    buf = (C.c_float * n)(*([0.5] * n))
    for _ in range(2):
        if lib.migc_train_step(m, buf, n, None, 0, None, 0):
            sys.exit(lib.migc_last_error(m).decode())
        k, v = 0, C.c_float()
        while lib.migc_metric(m, k, None, C.byref(v)) == 0:
            line += " " + bits(v.value)
            k += 1
    if lib.migc_generate(m, None, 0, buf, n):
        sys.exit(lib.migc_last_error(m).decode())
    fnv = 2166136261
    for w in struct.unpack("<%dI" % n, bytes(buf)):
        fnv = ((fnv ^ w) * 16777619) & 0xFFFFFFFF
    print(line + " gen %08x" % fnv)
    lib.migc_destroy(m)


libs = [C.CDLL(path, mode=C.RTLD_GLOBAL) for path in sys.argv[1:]]
for lib in libs:
    drive(lib)
