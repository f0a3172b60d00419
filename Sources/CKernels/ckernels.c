// CKernels: convolution helpers (im2col / col2im, portable: they only move memory) and the
// depthwise convolution and epilogue kernels of depthwise_impl.h, compiled per instruction set
// and dispatched at run time. See include/ckernels.h for the contracts.
#include "ckernels.h"

#include <stdlib.h>
#include <string.h>

// MARK: - Per-ISA instantiations

#if defined(__x86_64__) || defined(__i386__)
#define CK_X86 1
#else
#define CK_X86 0
#endif

#if CK_X86
#define CK_SUFFIX avx512
#define CK_ATTR __attribute__((target("avx512f")))
#define CK_VL 16
#define CK_ILO 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23
#define CK_IHI 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31
#define CK_EVENS 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30
#define CK_ODDS 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31
#include "depthwise_impl.h"
#undef CK_SUFFIX
#undef CK_ATTR
#undef CK_VL
#undef CK_EVENS
#undef CK_ODDS
#undef CK_ILO
#undef CK_IHI

#define CK_SUFFIX avx2
#define CK_ATTR __attribute__((target("avx2,fma")))
#define CK_VL 8
#define CK_ILO 0, 8, 1, 9, 2, 10, 3, 11
#define CK_IHI 4, 12, 5, 13, 6, 14, 7, 15
#define CK_EVENS 0, 2, 4, 6, 8, 10, 12, 14
#define CK_ODDS 1, 3, 5, 7, 9, 11, 13, 15
#include "depthwise_impl.h"
#undef CK_SUFFIX
#undef CK_ATTR
#undef CK_VL
#undef CK_EVENS
#undef CK_ODDS
#undef CK_ILO
#undef CK_IHI
#endif

#define CK_SUFFIX portable
#define CK_ATTR
#define CK_VL 4
#define CK_ILO 0, 4, 1, 5
#define CK_IHI 2, 6, 3, 7
#define CK_EVENS 0, 2, 4, 6
#define CK_ODDS 1, 3, 5, 7
#include "depthwise_impl.h"
#undef CK_SUFFIX
#undef CK_ATTR
#undef CK_VL
#undef CK_EVENS
#undef CK_ODDS
#undef CK_ILO
#undef CK_IHI

// MARK: - Dispatch

static int ck_forced_level = -1;

static int ck_detected_level(void) {
#if CK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 3;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 2;
#endif
    return 0;
}

int ck_isa_level(void) {
    int detected = ck_detected_level();
    int forced = __atomic_load_n(&ck_forced_level, __ATOMIC_RELAXED);
    if (forced < 0) return detected;
    if (forced >= 3 && detected >= 3) return 3;
    if (forced >= 2 && detected >= 2) return 2;
    return 0;
}

void ck_set_isa_level(int level) {
    __atomic_store_n(&ck_forced_level, level, __ATOMIC_RELAXED);
}

int ck_depthwise_conv2d(const float *x, const float *w, const float *bias, float *y,
                        const ck_conv_geom *g, int multiplier, int plane0, int plane1,
                        int clamp, float lo, float hi) {
#if CK_X86
    switch (ck_isa_level()) {
    case 3: return depthwise_forward_avx512(x, w, bias, y, g, multiplier, plane0, plane1, clamp, lo, hi);
    case 2: return depthwise_forward_avx2(x, w, bias, y, g, multiplier, plane0, plane1, clamp, lo, hi);
    default: break;
    }
#endif
    return depthwise_forward_portable(x, w, bias, y, g, multiplier, plane0, plane1, clamp, lo, hi);
}

int ck_depthwise_conv2d_backward_input(const float *dy, const float *w, float *dx,
                                       const ck_conv_geom *g, int multiplier, int plane0, int plane1) {
#if CK_X86
    switch (ck_isa_level()) {
    case 3: return depthwise_backward_input_avx512(dy, w, dx, g, multiplier, plane0, plane1);
    case 2: return depthwise_backward_input_avx2(dy, w, dx, g, multiplier, plane0, plane1);
    default: break;
    }
#endif
    return depthwise_backward_input_portable(dy, w, dx, g, multiplier, plane0, plane1);
}

int ck_depthwise_conv2d_backward_filter(const float *x, const float *dy, float *dw,
                                        const ck_conv_geom *g, int multiplier, int batch, int o0, int o1) {
#if CK_X86
    switch (ck_isa_level()) {
    case 3: return depthwise_backward_filter_avx512(x, dy, dw, g, multiplier, batch, o0, o1);
    case 2: return depthwise_backward_filter_avx2(x, dy, dw, g, multiplier, batch, o0, o1);
    default: break;
    }
#endif
    return depthwise_backward_filter_portable(x, dy, dw, g, multiplier, batch, o0, o1);
}

int ck_maxpool2d(const float *x, float *y, const ck_conv_geom *g, int plane0, int plane1) {
#if CK_X86
    switch (ck_isa_level()) {
    case 3: return maxpool_forward_avx512(x, y, g, plane0, plane1);
    case 2: return maxpool_forward_avx2(x, y, g, plane0, plane1);
    default: break;
    }
#endif
    return maxpool_forward_portable(x, y, g, plane0, plane1);
}

int ck_maxpool2d_backward(const float *x, const float *dy, float *dx, const ck_conv_geom *g,
                          int plane0, int plane1) {
#if CK_X86
    switch (ck_isa_level()) {
    case 3: return maxpool_backward_avx512(x, dy, dx, g, plane0, plane1);
    case 2: return maxpool_backward_avx2(x, dy, dx, g, plane0, plane1);
    default: break;
    }
#endif
    return maxpool_backward_portable(x, dy, dx, g, plane0, plane1);
}

void ck_bias_activation(float *y, int rows, int cols, long ldy, const float *bias,
                        int clamp, float lo, float hi) {
#if CK_X86
    switch (ck_isa_level()) {
    case 3: bias_activation_avx512(y, rows, cols, ldy, bias, clamp, lo, hi); return;
    case 2: bias_activation_avx2(y, rows, cols, ldy, bias, clamp, lo, hi); return;
    default: break;
    }
#endif
    bias_activation_portable(y, rows, cols, ldy, bias, clamp, lo, hi);
}

// MARK: - im2col / col2im

/// The range of output columns `j` in `0..<n` whose input column `ix0 + j * s` lies in `0..<W`.
static inline void ck_valid_range(int ix0, int s, int n, int W, int *lo, int *hi) {
    int a = 0;
    if (ix0 < 0) a = (-ix0 + s - 1) / s;
    int b = 0;
    if (W - ix0 > 0) b = (W - ix0 + s - 1) / s;
    if (b > n) b = n;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

void ck_im2col(const float *x, const ck_conv_geom *g, int c0, int c1, int p0, int p1,
               float *col, long ldcol) {
    const int H = g->H, W = g->W, KH = g->KH, KW = g->KW, SH = g->SH, SW = g->SW;
    const int DH = g->DH, DW = g->DW, PT = g->PT, PL = g->PL, OW = g->OW;
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (long)c * H * W;
        for (int ki = 0; ki < KH; ki++) {
            for (int kj = 0; kj < KW; kj++) {
                float *dst = col + ((long)(c - c0) * KH * KW + ki * KW + kj) * ldcol;
                int p = p0, oy = p0 / OW, ox = p0 % OW;
                while (p < p1) {
                    int n = OW - ox;
                    if (n > p1 - p) n = p1 - p;
                    int iy = oy * SH + ki * DH - PT;
                    if (iy < 0 || iy >= H) {
                        memset(dst, 0, (size_t)n * sizeof(float));
                    } else {
                        const float *xr = xc + (long)iy * W;
                        int ix0 = ox * SW + kj * DW - PL;
                        int lo, hi;
                        ck_valid_range(ix0, SW, n, W, &lo, &hi);
                        for (int j = 0; j < lo; j++) dst[j] = 0;
                        if (SW == 1) {
                            if (hi > lo) memcpy(dst + lo, xr + ix0 + lo, (size_t)(hi - lo) * sizeof(float));
                        } else {
                            const float *src = xr + ix0;
                            for (int j = lo; j < hi; j++) dst[j] = src[(long)j * SW];
                        }
                        for (int j = hi; j < n; j++) dst[j] = 0;
                    }
                    dst += n;
                    p += n;
                    oy++;
                    ox = 0;
                }
            }
        }
    }
}

void ck_col2im(const float *col, long ldcol, const ck_conv_geom *g, int c0, int c1, int p0, int p1,
               float *dx) {
    const int H = g->H, W = g->W, KH = g->KH, KW = g->KW, SH = g->SH, SW = g->SW;
    const int DH = g->DH, DW = g->DW, PT = g->PT, PL = g->PL, OW = g->OW;
    for (int c = c0; c < c1; c++) {
        float *dc = dx + (long)c * H * W;
        for (int ki = 0; ki < KH; ki++) {
            for (int kj = 0; kj < KW; kj++) {
                const float *src = col + ((long)(c - c0) * KH * KW + ki * KW + kj) * ldcol;
                int p = p0, oy = p0 / OW, ox = p0 % OW;
                while (p < p1) {
                    int n = OW - ox;
                    if (n > p1 - p) n = p1 - p;
                    int iy = oy * SH + ki * DH - PT;
                    if (iy >= 0 && iy < H) {
                        float *dr = dc + (long)iy * W;
                        int ix0 = ox * SW + kj * DW - PL;
                        int lo, hi;
                        ck_valid_range(ix0, SW, n, W, &lo, &hi);
                        float *d = dr + ix0;
                        if (SW == 1) {
                            for (int j = lo; j < hi; j++) d[j] += src[j];
                        } else {
                            for (int j = lo; j < hi; j++) d[(long)j * SW] += src[j];
                        }
                    }
                    src += n;
                    p += n;
                    oy++;
                    ox = 0;
                }
            }
        }
    }
}

static __thread int ck_parallel_depth_;
int ck_parallel_depth(void) { return ck_parallel_depth_; }
void ck_parallel_depth_add(int delta) { ck_parallel_depth_ += delta; }

static __thread int ck_thread_count_override_;
int ck_thread_count_override(void) { return ck_thread_count_override_; }
void ck_set_thread_count_override(int count) { ck_thread_count_override_ = count; }

// MARK: - Channels-last (NHWC) max pooling

// Layout: x, y, dx, dy are NHWC (the channel innermost and contiguous); `g->C` is the channel
// count. The semantics are ck_maxpool2d's and ck_maxpool2d_backward's, exactly: the forward
// records the winner of each window and channel (its window offset `ki * KW + kj`) and the
// backward gathers, per input pixel, the gradients of the windows it won.
// The kernels are written once as always-inline bodies over 16-lane vector-extension types and
// instantiated per instruction set by thin wrappers with a `target` attribute (the vectors then
// map to one zmm, two ymm or four xmm registers). The bodies are specialised further by the width
// of the recorded argmax (`ab`: 0 = not recorded, 1, 2 or 4 bytes), a constant in each wrapper.

#include <stdint.h>

/// The taps `k` in `0..<K` (dilation `d`) of a window starting at `start` that land in `0..<size`:
/// `[*lo, *hi)`, empty when `*lo == *hi`.
static inline void ck_nhwc_tap_range(int start, int K, int d, int size, int *lo, int *hi) {
    int a = start >= 0 ? 0 : (-start + d - 1) / d;
    int b = start >= size ? 0 : (size - 1 - start) / d + 1;
    if (b > K) b = K;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

// 16 Float32 / Int32 lanes (one zmm, two ymm or four xmm registers, as the wrapper's target
// allows); loads and stores are unaligned.
typedef float ck_nhwc_vf __attribute__((vector_size(64)));
typedef int32_t ck_nhwc_vi __attribute__((vector_size(64)));
typedef uint8_t ck_nhwc_v8 __attribute__((vector_size(16)));
typedef uint16_t ck_nhwc_v16 __attribute__((vector_size(32)));
#define CK_NHWC_LOAD(T, p) ({ T _v; __builtin_memcpy(&_v, (p), sizeof _v); _v; })
#define CK_NHWC_STORE(p, v) ({ __typeof__(v) _v = (v); __builtin_memcpy((p), &_v, sizeof _v); })
#define CK_NHWC_SELECT(m, a, b) ((ck_nhwc_vf)(((ck_nhwc_vi)(a) & (m)) | ((ck_nhwc_vi)(b) & ~(m))))
/// The winner rule of ck_maxpool2d_backward, lane-wise: a greater value or the first NaN.
#define CK_NHWC_TAKESV(v, b) (((v) > (b)) | (((v) != (v)) & ((b) == (b))))

/// The recorded argmax of 16 channels at `p` (`ab` bytes each), widened to 32 bits.
#define CK_NHWC_LOAD_ARGMAX(ab, p)                                                              \
    ((ab) == 1 ? __builtin_convertvector(CK_NHWC_LOAD(ck_nhwc_v8, (const uint8_t *)(p)), ck_nhwc_vi) \
     : (ab) == 2 ? __builtin_convertvector(CK_NHWC_LOAD(ck_nhwc_v16, (const uint16_t *)(p)), ck_nhwc_vi) \
     : CK_NHWC_LOAD(ck_nhwc_vi, (const int32_t *)(p)))

/// Stores 16 window offsets `v` at `p`, narrowed to `ab` bytes each.
#define CK_NHWC_STORE_ARGMAX(ab, p, v)                                                          \
    do {                                                                                        \
        if ((ab) == 1) CK_NHWC_STORE((uint8_t *)(p), __builtin_convertvector((v), ck_nhwc_v8));  \
        else if ((ab) == 2) CK_NHWC_STORE((uint16_t *)(p), __builtin_convertvector((v), ck_nhwc_v16)); \
        else if ((ab) == 4) CK_NHWC_STORE((int32_t *)(p), (v));                                 \
    } while (0)

/// Max pooling of the output rows `r0..<r1` (numbered `n * OH + oy`), see ``ck_maxpool2d_nhwc``.
/// Per window: the list of its input taps (offsets into the image, window offsets), then per
/// block of 32 (then 16) channels the running maxima and winners in registers over the taps in
/// scan order; the last `C % 16` channels one by one.
static inline __attribute__((always_inline)) int ck_nhwc_maxpool_body(
    const float *restrict x, float *restrict y, void *restrict argmax, const int ab,
    const ck_conv_geom *g, long r0, long r1)
{
    const int C = g->C, H = g->H, W = g->W, KH = g->KH, KW = g->KW, SH = g->SH, SW = g->SW;
    const int DH = g->DH, DW = g->DW, PT = g->PT, PL = g->PL, OH = g->OH, OW = g->OW;
    const size_t taps = (size_t)KH * KW;
    long *toff = (long *)malloc(taps * sizeof(long));
    int32_t *cr = (int32_t *)malloc((2 * (size_t)OW + taps + 1) * sizeof(int32_t));
    if (!toff || !cr) { free(toff); free(cr); return -1; }
    int32_t *tk = cr + 2 * (size_t)OW;
    for (int ox = 0; ox < OW; ox++) ck_nhwc_tap_range(ox * SW - PL, KW, DW, W, &cr[2 * ox], &cr[2 * ox + 1]);
    const ck_nhwc_vf lowest = (ck_nhwc_vf){0} - __FLT_MAX__;
    for (long r = r0; r < r1; r++) {
        const long n = r / OH;
        const int oy = (int)(r % OH), y0 = oy * SH - PT;
        int klo, khi;
        ck_nhwc_tap_range(y0, KH, DH, H, &klo, &khi);
        const float *xn = x + n * H * W * C;
        for (int ox = 0; ox < OW; ox++) {
            const long o = (r * OW + ox) * C;
            float *restrict yp = y + o;
            char *ap = ab ? (char *)argmax + o * ab : 0;
            const int jlo = cr[2 * ox], jhi = cr[2 * ox + 1], x0 = ox * SW - PL;
            if (klo >= khi || jlo >= jhi) {
                // No input tap: -FLT_MAX (as ck_maxpool2d); the argmax is never read.
                for (int c = 0; c < C; c++) yp[c] = -__FLT_MAX__;
                if (ab) memset(ap, 0, (size_t)C * ab);
                continue;
            }
            int nt = 0;
            for (int ki = klo; ki < khi; ki++) {
                for (int kj = jlo; kj < jhi; kj++) {
                    toff[nt] = ((long)(y0 + ki * DH) * W + x0 + kj * DW) * C;
                    tk[nt] = ki * KW + kj;
                    nt++;
                }
            }
            int c = 0;
            // The first input tap starts the window (as ck_maxpool2d_backward's `have`); the
            // maximum starts from -FLT_MAX as in ck_maxpool2d, so a window of -inf taps yields
            // -FLT_MAX (a NaN compares false and stays).
            for (; c + 32 <= C; c += 32) {
                const float *xc = xn + c;
                ck_nhwc_vf b0 = CK_NHWC_LOAD(ck_nhwc_vf, xc + toff[0]);
                ck_nhwc_vf b1 = CK_NHWC_LOAD(ck_nhwc_vf, xc + toff[0] + 16);
                ck_nhwc_vi i0 = (ck_nhwc_vi){0} + tk[0], i1 = i0;
                for (int t = 1; t < nt; t++) {
                    ck_nhwc_vf v0 = CK_NHWC_LOAD(ck_nhwc_vf, xc + toff[t]);
                    ck_nhwc_vf v1 = CK_NHWC_LOAD(ck_nhwc_vf, xc + toff[t] + 16);
                    ck_nhwc_vi m0 = CK_NHWC_TAKESV(v0, b0), m1 = CK_NHWC_TAKESV(v1, b1);
                    b0 = CK_NHWC_SELECT(m0, v0, b0);
                    b1 = CK_NHWC_SELECT(m1, v1, b1);
                    if (ab) {
                        ck_nhwc_vi kv = (ck_nhwc_vi){0} + tk[t];
                        i0 = (kv & m0) | (i0 & ~m0);
                        i1 = (kv & m1) | (i1 & ~m1);
                    }
                }
                b0 = CK_NHWC_SELECT(b0 < lowest, lowest, b0);
                b1 = CK_NHWC_SELECT(b1 < lowest, lowest, b1);
                CK_NHWC_STORE(yp + c, b0);
                CK_NHWC_STORE(yp + c + 16, b1);
                CK_NHWC_STORE_ARGMAX(ab, ap + (long)c * ab, i0);
                CK_NHWC_STORE_ARGMAX(ab, ap + (long)(c + 16) * ab, i1);
            }
            for (; c + 16 <= C; c += 16) {
                const float *xc = xn + c;
                ck_nhwc_vf b0 = CK_NHWC_LOAD(ck_nhwc_vf, xc + toff[0]);
                ck_nhwc_vi i0 = (ck_nhwc_vi){0} + tk[0];
                for (int t = 1; t < nt; t++) {
                    ck_nhwc_vf v0 = CK_NHWC_LOAD(ck_nhwc_vf, xc + toff[t]);
                    ck_nhwc_vi m0 = CK_NHWC_TAKESV(v0, b0);
                    b0 = CK_NHWC_SELECT(m0, v0, b0);
                    if (ab) i0 = (((ck_nhwc_vi){0} + tk[t]) & m0) | (i0 & ~m0);
                }
                b0 = CK_NHWC_SELECT(b0 < lowest, lowest, b0);
                CK_NHWC_STORE(yp + c, b0);
                CK_NHWC_STORE_ARGMAX(ab, ap + (long)c * ab, i0);
            }
            for (; c < C; c++) {
                const float *xc = xn + c;
                float b = xc[toff[0]];
                int32_t i = tk[0];
                for (int t = 1; t < nt; t++) {
                    float v = xc[toff[t]];
                    if (CK_NHWC_TAKESV(v, b)) { b = v; i = tk[t]; }
                }
                yp[c] = b < -__FLT_MAX__ ? -__FLT_MAX__ : b;
                if (ab == 1) ((uint8_t *)ap)[c] = (uint8_t)i;
                else if (ab == 2) ((uint16_t *)ap)[c] = (uint16_t)i;
                else if (ab == 4) ((int32_t *)ap)[c] = i;
            }
        }
    }
    free(toff);
    free(cr);
    return 0;
}

/// The input gradient of the input rows `r0..<r1` (numbered `n * H + iy`), see
/// ``ck_maxpool2d_nhwc_backward``: a gather. Per input pixel: the windows that contain it, in
/// scan order (oy, then ox ascending: the order ck_maxpool2d_backward adds them in, so the sums
/// round identically, starting from +0); per block of channels the sum of the output gradients
/// of the windows whose recorded argmax is this pixel's window offset, written once.
static inline __attribute__((always_inline)) int ck_nhwc_maxpool_backward_body(
    const float *restrict dy, const void *restrict argmax, const int ab, float *restrict dx,
    const ck_conv_geom *g, long r0, long r1)
{
    const int C = g->C, H = g->H, W = g->W, KH = g->KH, KW = g->KW, SH = g->SH, SW = g->SW;
    const int DH = g->DH, DW = g->DW, PT = g->PT, PL = g->PL, OH = g->OH, OW = g->OW;
    const size_t taps = (size_t)KH * KW;
    // Per input column, the windows (tap kj, output column ox) containing it, ox ascending; per
    // input row the same for (ki, oy); per pixel the windows' offsets into dy and tap numbers.
    int32_t *cnt = (int32_t *)malloc(((size_t)W + 2 * (size_t)W * KW + 2 * (size_t)KH + taps + 1) * sizeof(int32_t));
    long *woff = (long *)malloc(taps * sizeof(long));
    if (!cnt || !woff) { free(cnt); free(woff); return -1; }
    int32_t *ck = cnt + W, *co = ck + (size_t)W * KW, *rk = co + (size_t)W * KW, *ro = rk + KH, *wk = ro + KH;
    for (int ix = 0; ix < W; ix++) {
        int m = 0;
        for (int kj = KW - 1; kj >= 0; kj--) {
            int t = ix + PL - kj * DW;
            if (t >= 0 && t % SW == 0 && t / SW < OW) {
                ck[(size_t)ix * KW + m] = kj;
                co[(size_t)ix * KW + m] = t / SW;
                m++;
            }
        }
        cnt[ix] = m;
    }
    for (long r = r0; r < r1; r++) {
        const long n = r / H;
        const int iy = (int)(r % H);
        int nr = 0;
        for (int ki = KH - 1; ki >= 0; ki--) {
            int t = iy + PT - ki * DH;
            if (t >= 0 && t % SH == 0 && t / SH < OH) {
                rk[nr] = ki;
                ro[nr] = t / SH;
                nr++;
            }
        }
        for (int ix = 0; ix < W; ix++) {
            float *restrict dp = dx + (r * W + ix) * C;
            int nw = 0;
            for (int a = 0; a < nr; a++) {
                for (int b = 0; b < cnt[ix]; b++) {
                    wk[nw] = rk[a] * KW + ck[(size_t)ix * KW + b];
                    woff[nw] = ((n * OH + ro[a]) * OW + co[(size_t)ix * KW + b]) * C;
                    nw++;
                }
            }
            int c = 0;
            for (; c + 32 <= C; c += 32) {
                ck_nhwc_vf s0 = {0}, s1 = {0};
                for (int w = 0; w < nw; w++) {
                    const long o = woff[w] + c;
                    const ck_nhwc_vi kv = (ck_nhwc_vi){0} + wk[w];
                    ck_nhwc_vi m0 = CK_NHWC_LOAD_ARGMAX(ab, (const char *)argmax + o * ab) == kv;
                    ck_nhwc_vi m1 = CK_NHWC_LOAD_ARGMAX(ab, (const char *)argmax + (o + 16) * ab) == kv;
                    s0 += (ck_nhwc_vf)((ck_nhwc_vi)CK_NHWC_LOAD(ck_nhwc_vf, dy + o) & m0);
                    s1 += (ck_nhwc_vf)((ck_nhwc_vi)CK_NHWC_LOAD(ck_nhwc_vf, dy + o + 16) & m1);
                }
                CK_NHWC_STORE(dp + c, s0);
                CK_NHWC_STORE(dp + c + 16, s1);
            }
            for (; c + 16 <= C; c += 16) {
                ck_nhwc_vf s0 = {0};
                for (int w = 0; w < nw; w++) {
                    const long o = woff[w] + c;
                    ck_nhwc_vi m0 = CK_NHWC_LOAD_ARGMAX(ab, (const char *)argmax + o * ab) == (ck_nhwc_vi){0} + wk[w];
                    s0 += (ck_nhwc_vf)((ck_nhwc_vi)CK_NHWC_LOAD(ck_nhwc_vf, dy + o) & m0);
                }
                CK_NHWC_STORE(dp + c, s0);
            }
            for (; c < C; c++) {
                float s = 0;
                for (int w = 0; w < nw; w++) {
                    const long o = woff[w] + c;
                    int32_t k = ab == 1 ? ((const uint8_t *)argmax)[o]
                              : ab == 2 ? ((const uint16_t *)argmax)[o] : ((const int32_t *)argmax)[o];
                    s += k == wk[w] ? dy[o] : 0.0f;
                }
                dp[c] = s;
            }
        }
    }
    free(cnt);
    free(woff);
    return 0;
}

#undef CK_NHWC_LOAD
#undef CK_NHWC_STORE
#undef CK_NHWC_SELECT
#undef CK_NHWC_TAKESV
#undef CK_NHWC_LOAD_ARGMAX
#undef CK_NHWC_STORE_ARGMAX

#define CK_NHWC_FORWARD(SUFFIX, ATTR)                                                           \
    static ATTR int ck_nhwc_maxpool_##SUFFIX(const float *x, float *y, void *argmax, int ab,    \
                                             const ck_conv_geom *g, long r0, long r1) {        \
        switch (ab) {                                                                         \
        case 1: return ck_nhwc_maxpool_body(x, y, argmax, 1, g, r0, r1);                      \
        case 2: return ck_nhwc_maxpool_body(x, y, argmax, 2, g, r0, r1);                      \
        case 4: return ck_nhwc_maxpool_body(x, y, argmax, 4, g, r0, r1);                      \
        default: return ck_nhwc_maxpool_body(x, y, 0, 0, g, r0, r1);                          \
        }                                                                                     \
    }
#define CK_NHWC_BACKWARD(SUFFIX, ATTR)                                                          \
    static ATTR int ck_nhwc_maxpool_backward_##SUFFIX(const float *dy, const void *argmax,     \
                                                      int ab, float *dx,                      \
                                                      const ck_conv_geom *g, long r0, long r1) { \
        switch (ab) {                                                                         \
        case 1: return ck_nhwc_maxpool_backward_body(dy, argmax, 1, dx, g, r0, r1);           \
        case 2: return ck_nhwc_maxpool_backward_body(dy, argmax, 2, dx, g, r0, r1);           \
        default: return ck_nhwc_maxpool_backward_body(dy, argmax, 4, dx, g, r0, r1);          \
        }                                                                                     \
    }

// The backward has no AVX-512 variant: on the Zen 5 machines CAMKit is measured on, its AVX2
// build ran 1.5x faster than the AVX-512F one (which turns each masked gradient into a masked
// load), single-threaded and on 2 threads.
#if CK_X86
CK_NHWC_FORWARD(avx512, __attribute__((target("avx512f"))))
CK_NHWC_FORWARD(avx2, __attribute__((target("avx2,fma"))))
CK_NHWC_BACKWARD(avx2, __attribute__((target("avx2,fma"))))
#endif
CK_NHWC_FORWARD(portable, )
CK_NHWC_BACKWARD(portable, )

#undef CK_NHWC_FORWARD
#undef CK_NHWC_BACKWARD

int ck_maxpool2d_nhwc(const float *x, float *y, void *argmax, int argmax_bytes, const ck_conv_geom *g,
                      long row0, long row1) {
    if (argmax == 0) argmax_bytes = 0;
#if CK_X86
    switch (ck_isa_level()) {
    case 3: return ck_nhwc_maxpool_avx512(x, y, argmax, argmax_bytes, g, row0, row1);
    case 2: return ck_nhwc_maxpool_avx2(x, y, argmax, argmax_bytes, g, row0, row1);
    default: break;
    }
#endif
    return ck_nhwc_maxpool_portable(x, y, argmax, argmax_bytes, g, row0, row1);
}

int ck_maxpool2d_nhwc_backward(const float *dy, const void *argmax, int argmax_bytes, float *dx,
                               const ck_conv_geom *g, long row0, long row1) {
#if CK_X86
    switch (ck_isa_level()) {
    case 3:
    case 2: return ck_nhwc_maxpool_backward_avx2(dy, argmax, argmax_bytes, dx, g, row0, row1);
    default: break;
    }
#endif
    return ck_nhwc_maxpool_backward_portable(dy, argmax, argmax_bytes, dx, g, row0, row1);
}
