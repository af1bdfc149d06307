/* ezkl 23's Poseidon hash (width 2, rate 1, 8 full + 56 partial rounds, x^5, BN254 scalar field,
 * halo2_gadgets VariableLength domain: capacity 2^64, no padding at rate 1), batched, in C.
 *
 * Bit-exact with ezkl.poseidon_hash (tests/test_poseidon.py checks it on random, edge and
 * real-commitment inputs, and against the pure-Python reference in zkauction/zk/poseidon.py).
 * Field arithmetic: 4x64-bit limbs, Montgomery multiplication (CIOS) with unsigned __int128.
 *
 * Python API: hash_batch(data: bytes, length: int) -> bytes
 *   data: k messages of `length` field elements each, every element 32 bytes little-endian and
 *   below p; returns k hashes, 32 bytes little-endian each. The GIL is released while hashing.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_poseidon_params.h"

typedef unsigned __int128 u128;
typedef struct { uint64_t v[4]; } fe;

static inline int geq_p(const uint64_t a[4]) {
    for (int i = 3; i >= 0; i--) {
        if (a[i] > P_LIMBS[i]) return 1;
        if (a[i] < P_LIMBS[i]) return 0;
    }
    return 1;
}

static inline void sub_p(uint64_t a[4]) {
    u128 borrow = 0;
    for (int i = 0; i < 4; i++) {
        u128 d = (u128)a[i] - P_LIMBS[i] - borrow;
        a[i] = (uint64_t)d;
        borrow = (d >> 64) & 1;
    }
}

static inline void fe_add(fe *r, const fe *a, const fe *b) {
    u128 c = 0;
    for (int i = 0; i < 4; i++) {
        c += (u128)a->v[i] + b->v[i];
        r->v[i] = (uint64_t)c;
        c >>= 64;
    }
    /* a, b < p < 2^254: no carry out of 256 bits */
    if (geq_p(r->v)) sub_p(r->v);
}

/* Montgomery product a*b/R mod p: CIOS without the extra carry words, valid because the top limb
 * of p is below 2^63 - 1 (gnark-crypto's "no-carry" variant). */
static inline void fe_mul(fe *r, const fe *a, const fe *b) {
    uint64_t t[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        u128 A = (u128)a->v[0] * b->v[i] + t[0];
        t[0] = (uint64_t)A;
        A >>= 64;
        uint64_t m = t[0] * P_INV;
        u128 C = ((u128)m * P_LIMBS[0] + t[0]) >> 64;
        for (int j = 1; j < 4; j++) {
            A += (u128)a->v[j] * b->v[i] + t[j];
            t[j] = (uint64_t)A;
            A >>= 64;
            C += (u128)m * P_LIMBS[j] + t[j];
            t[j - 1] = (uint64_t)C;
            C >>= 64;
        }
        t[3] = (uint64_t)C + (uint64_t)A;
    }
    if (geq_p(t)) sub_p(t);
    memcpy(r->v, t, sizeof r->v);
}

static inline void sbox(fe *x) {
    fe x2, x4;
    fe_mul(&x2, x, x);
    fe_mul(&x4, &x2, &x2);
    fe_mul(x, &x4, x);
}

static const fe *RCF = (const fe *)RC;
static const fe *MDSF = (const fe *)MDS_M;

static void permute(fe s[2]) {
    for (int r = 0; r < 64; r++) {
        fe_add(&s[0], &s[0], &RCF[2 * r]);
        fe_add(&s[1], &s[1], &RCF[2 * r + 1]);
        sbox(&s[0]);
        if (r < 4 || r >= 60) sbox(&s[1]);
        fe a, b, c, d;
        fe_mul(&a, &MDSF[0], &s[0]);
        fe_mul(&b, &MDSF[1], &s[1]);
        fe_mul(&c, &MDSF[2], &s[0]);
        fe_mul(&d, &MDSF[3], &s[1]);
        fe_add(&s[0], &a, &b);
        fe_add(&s[1], &c, &d);
    }
}

static const fe R2F = {{R2_LIMBS[0], R2_LIMBS[1], R2_LIMBS[2], R2_LIMBS[3]}};

static void load(fe *x, const unsigned char *p) {
    for (int i = 0; i < 4; i++) {
        uint64_t w = 0;
        for (int k = 7; k >= 0; k--) w = (w << 8) | p[8 * i + k];
        x->v[i] = w;
    }
}

static void store(unsigned char *p, const fe *x) {
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 8; k++) p[8 * i + k] = (unsigned char)(x->v[i] >> (8 * k));
}

static void hash_one(unsigned char *out, const unsigned char *msg, Py_ssize_t length) {
    fe s[2];
    memset(&s[0], 0, sizeof(fe));
    memcpy(s[1].v, CAPACITY_MONT, sizeof s[1].v);
    for (Py_ssize_t k = 0; k < length; k++) {
        fe x;
        load(&x, msg + 32 * k);
        fe_mul(&x, &x, &R2F); /* to Montgomery form */
        fe_add(&s[0], &s[0], &x);
        permute(s);
    }
    fe one = {{1, 0, 0, 0}};
    fe h;
    fe_mul(&h, &s[0], &one); /* out of Montgomery form */
    store(out, &h);
}

static PyObject *hash_batch(PyObject *self, PyObject *args) {
    Py_buffer data;
    Py_ssize_t length;
    if (!PyArg_ParseTuple(args, "y*n", &data, &length)) return NULL;
    if (length < 1) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "hash_batch: a message needs at least one field element");
        return NULL;
    }
    Py_ssize_t step = 32 * length;
    if (data.len % step != 0) {
        PyBuffer_Release(&data);
        PyErr_Format(PyExc_ValueError, "hash_batch: %zd bytes is not a whole number of %zd-element messages", data.len, length);
        return NULL;
    }
    const unsigned char *in = (const unsigned char *)data.buf;
    Py_ssize_t elements = data.len / 32;
    for (Py_ssize_t e = 0; e < elements; e++) {
        fe x;
        load(&x, in + 32 * e);
        if (geq_p(x.v)) {
            PyBuffer_Release(&data);
            PyErr_Format(PyExc_ValueError, "hash_batch: element %zd is not below the BN254 scalar field modulus", e);
            return NULL;
        }
    }
    Py_ssize_t count = data.len / step;
    PyObject *out = PyBytes_FromStringAndSize(NULL, 32 * count);
    if (out == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < count; k++) hash_one(o + 32 * k, in + step * k, length);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return out;
}

static PyMethodDef methods[] = {
    {"hash_batch", hash_batch, METH_VARARGS,
     "hash_batch(data, length) -> bytes: ezkl's Poseidon hash of each length-element message in data "
     "(32-byte little-endian field elements); 32 bytes little-endian per hash."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_poseidon", NULL, -1, methods};

PyMODINIT_FUNC PyInit__poseidon(void) { return PyModule_Create(&module); }
