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
