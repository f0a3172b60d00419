// Depthwise convolution and epilogue kernels, written once and compiled once per instruction set.
//
// ckernels.c includes this file several times, each time defining:
//   CK_SUFFIX  a token appended to every function name (avx512, avx2, portable)
//   CK_ATTR    the function attributes (e.g. __attribute__((target("avx2,fma"))))
//   CK_VL      the number of Float32 lanes of the vector type (16, 8, 4)
//   CK_EVENS, CK_ODDS  shuffle indices picking the even / odd lanes of two concatenated vectors
//   CK_ILO, CK_IHI     shuffle indices interleaving the low / high halves of two vectors
// The kernels use clang/GCC vector extensions; with the target attribute the vector type maps
// to zmm / ymm registers, and `acc + w * x` contracts to an FMA.
//
// Layout of the padded, phase-split input buffer (the core idea of the direct kernel): each input
// row `iy` is stored as `SW` phases of `PLn` floats; phase `f`, index `j` holds input column
// `j * SW + f - PL` (zero outside the image). For output column `ox` and tap `kj` the input column
// `ox * SW + kj * DW - PL` is then phase `(kj * DW) % SW`, index `ox + (kj * DW) / SW`: contiguous
// in `ox` for every stride, so every tap is one unaligned vector load.

#define CK_CAT2(a, b) a##_##b
#define CK_CAT(a, b) CK_CAT2(a, b)
#define CK_FN(name) CK_CAT(name, CK_SUFFIX)
#define VF CK_FN(vf)

typedef float VF __attribute__((vector_size(CK_VL * 4)));

static inline __attribute__((always_inline)) CK_ATTR VF CK_FN(load)(const float *p) {
    VF v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) CK_ATTR void CK_FN(store)(float *p, VF v) {
    __builtin_memcpy(p, &v, sizeof v);
}

static inline __attribute__((always_inline)) CK_ATTR VF CK_FN(splat)(float s) {
    VF v = {0};
    return v + s;
}

static inline __attribute__((always_inline)) CK_ATTR VF CK_FN(clampv)(VF v, VF lo, VF hi) {
    v = __builtin_elementwise_max(v, lo);
    return __builtin_elementwise_min(v, hi);
}

static inline __attribute__((always_inline)) CK_ATTR float CK_FN(hsum)(VF v) {
    float s = 0;
    for (int i = 0; i < CK_VL; i++) s += v[i];
    return s;
}

/// Fills the phase-split buffer (H rows of SW * PLn floats) from one input plane.
static inline __attribute__((always_inline)) CK_ATTR void CK_FN(dw_fill)(
    const float *restrict xp, float *restrict buf, const ck_conv_geom *g, int PLn)
{
    const int H = g->H, W = g->W, SW = g->SW, PL = g->PL;
    for (int iy = 0; iy < H; iy++) {
        const float *xr = xp + (long)iy * W;
        float *row = buf + (long)iy * SW * PLn;
        if (SW == 1) {
            int lead = PL < PLn ? PL : PLn;
            for (int j = 0; j < lead; j++) row[j] = 0;
            int n = PLn - lead;
            if (n > W) n = W;
            if (n > 0) __builtin_memcpy(row + lead, xr, (size_t)n * sizeof(float));
            for (int j = lead + (n > 0 ? n : 0); j < PLn; j++) row[j] = 0;
        } else if (SW == 2) {
            // Split even and odd columns with vector shuffles where both phases are inside the
            // image; scalar at the edges.
            float *d0 = row, *d1 = row + PLn;
            int lo0 = PL > 0 ? (PL + 1) / 2 : 0, hi0 = W + PL > 0 ? (W + PL + 1) / 2 : 0;
            int lo1 = PL - 1 > 0 ? PL / 2 : 0, hi1 = W + PL - 1 > 0 ? (W + PL) / 2 : 0;
            int lo = lo0 > lo1 ? lo0 : lo1, hi = hi0 < hi1 ? hi0 : hi1;
            if (hi > PLn) hi = PLn;
            if (lo > hi) lo = hi;
            const float *src = xr - PL;
            memset(d0, 0, (size_t)PLn * sizeof(float));
            memset(d1, 0, (size_t)PLn * sizeof(float));
            int j = lo;
            for (; j + CK_VL <= hi; j += CK_VL) {
                VF a = CK_FN(load)(src + 2 * j), b = CK_FN(load)(src + 2 * j + CK_VL);
                CK_FN(store)(d0 + j, __builtin_shufflevector(a, b, CK_EVENS));
                CK_FN(store)(d1 + j, __builtin_shufflevector(a, b, CK_ODDS));
            }
            // The few elements left at either edge (scalar: vectorising these as masked gathers
            // cost more than the whole interior).
            if (hi0 > PLn) hi0 = PLn;
            if (hi1 > PLn) hi1 = PLn;
#pragma clang loop vectorize(disable)
            for (int k = lo0; k < lo && k < hi0; k++) d0[k] = src[2 * k];
#pragma clang loop vectorize(disable)
            for (int k = j > lo0 ? j : lo0; k < hi0; k++) d0[k] = src[2 * k];
#pragma clang loop vectorize(disable)
            for (int k = lo1; k < lo && k < hi1; k++) d1[k] = src[2 * k + 1];
#pragma clang loop vectorize(disable)
            for (int k = j > lo1 ? j : lo1; k < hi1; k++) d1[k] = src[2 * k + 1];
        } else {
            for (int f = 0; f < SW; f++) {
                float *dst = row + (long)f * PLn;
                // Valid j: 0 <= j * SW + f - PL < W.
                int lo = PL - f > 0 ? (PL - f + SW - 1) / SW : 0;
                int hi = W + PL - f > 0 ? (W + PL - f + SW - 1) / SW : 0;
                if (hi > PLn) hi = PLn;
                if (lo > hi) lo = hi;
                for (int j = 0; j < lo; j++) dst[j] = 0;
                const float *src = xr + f - PL;
#pragma clang loop vectorize(disable)
                for (int j = lo; j < hi; j++) dst[j] = src[(long)j * SW];
                for (int j = hi; j < PLn; j++) dst[j] = 0;
            }
        }
    }
}

/// One output plane of a depthwise convolution. KH, KW are compile-time constants at the
/// specialised call sites, so the tap loops unroll and the weights stay in registers.
static inline __attribute__((always_inline)) CK_ATTR void CK_FN(dw_plane)(
    const float *restrict buf, const float *restrict zero, const float *restrict wp, float bias,
    float *restrict yp, const ck_conv_geom *g, int PLn, int clamp, float lo, float hi,
    int accumulate, const int KH, const int KW)
{
    const int H = g->H, SH = g->SH, SW = g->SW, DH = g->DH, DW = g->DW, PT = g->PT;
    const int OH = g->OH, OW = g->OW;
    const VF lov = CK_FN(splat)(lo), hiv = CK_FN(splat)(hi), bv = CK_FN(splat)(bias);
    const float *rows[KH];
    int offs[KW];
    for (int kj = 0; kj < KW; kj++) offs[kj] = ((kj * DW) % SW) * PLn + (kj * DW) / SW;
    for (int oy = 0; oy < OH; oy++) {
        for (int ki = 0; ki < KH; ki++) {
            int r = oy * SH + ki * DH - PT;
            rows[ki] = (r >= 0 && r < H) ? buf + (long)r * SW * PLn : zero;
        }
        float *yr = yp + (long)oy * OW;
        for (int ox = 0; ox < OW; ox += CK_VL) {
            // One accumulator per kernel row: KH independent FMA chains of length KW instead of
            // one chain of KH·KW (the FMA latency, not the throughput, bounds small planes).
            VF part[KH];
            for (int ki = 0; ki < KH; ki++) {
                const float *rp = rows[ki] + ox;
                VF a = CK_FN(splat)(wp[ki * KW]) * CK_FN(load)(rp + offs[0]);
                for (int kj = 1; kj < KW; kj++)
                    a = a + CK_FN(splat)(wp[ki * KW + kj]) * CK_FN(load)(rp + offs[kj]);
                part[ki] = a;
            }
            VF acc = bv;
            for (int ki = 0; ki < KH; ki++) acc = acc + part[ki];
            if (clamp) acc = CK_FN(clampv)(acc, lov, hiv);
            if (ox + CK_VL <= OW) {
                if (accumulate) acc = acc + CK_FN(load)(yr + ox);
                CK_FN(store)(yr + ox, acc);
            } else {
                float tmp[CK_VL];
                CK_FN(store)(tmp, acc);
                if (accumulate) {
                    for (int i = 0; i < OW - ox; i++) yr[ox + i] += tmp[i];
                } else {
                    for (int i = 0; i < OW - ox; i++) yr[ox + i] = tmp[i];
                }
            }
        }
    }
}

static CK_ATTR int CK_FN(depthwise_forward)(
    const float *x, const float *w, const float *bias, float *y, const ck_conv_geom *g,
    int multiplier, int plane0, int plane1, int clamp, float lo, float hi)
{
    const int C = g->C, H = g->H, W = g->W, KH = g->KH, KW = g->KW, SW = g->SW, DW = g->DW;
    const int O = C * multiplier, OH = g->OH, OW = g->OW;
    const int OWr = (OW + CK_VL - 1) / CK_VL * CK_VL;
    const int PLn = OWr + ((KW - 1) * DW) / SW + 1;
    size_t rowFloats = (size_t)SW * PLn;
    float *buf = (float *)malloc(((size_t)H + 1) * rowFloats * sizeof(float));
    if (!buf) return -1;
    float *zero = buf + (size_t)H * rowFloats;
    for (size_t i = 0; i < rowFloats; i++) zero[i] = 0;
    int lastInput = -1;
    for (int p = plane0; p < plane1; p++) {
        int n = p / O, o = p % O, c = o / multiplier;
        int inputPlane = n * C + c;
        if (inputPlane != lastInput) {
            CK_FN(dw_fill)(x + (long)inputPlane * H * W, buf, g, PLn);
            lastInput = inputPlane;
        }
        const float *wp = w + (long)o * KH * KW;
        float b = bias ? bias[o] : 0.0f;
        float *yp = y + (long)p * OH * OW;
        if (KH == 3 && KW == 3)
            CK_FN(dw_plane)(buf, zero, wp, b, yp, g, PLn, clamp, lo, hi, 0, 3, 3);
        else if (KH == 5 && KW == 5)
            CK_FN(dw_plane)(buf, zero, wp, b, yp, g, PLn, clamp, lo, hi, 0, 5, 5);
        else
            CK_FN(dw_plane)(buf, zero, wp, b, yp, g, PLn, clamp, lo, hi, 0, KH, KW);
    }
    free(buf);
    return 0;
}

/// Floor division and the matching non-negative remainder (b > 0).
static inline __attribute__((always_inline)) int CK_FN(floordiv)(int a, int b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/// The input gradient, gather form: each dx element sums the taps that reach it, in registers.
///
/// Stride 1 (with padding at most the dilated kernel's reach): dx is the forward correlation of
/// dy with the kernel rotated by 180 degrees and padding `(K - 1)·D - p` per side, so the forward
/// plane kernel (`dw_plane`, unrolled for 3x3 / 5x5) computes it; the `multiplier` output planes
/// of a channel accumulate into its dx plane.
///
/// Otherwise (strides > 1): polyphase. The dx elements of phase (fy, fx) = (iy mod SH, ix mod SW)
/// receive exactly the taps (ki, kj) with (fy + PT - ki·DH) and (fx + PL - kj·DW) divisible by the
/// strides, from dy row `a + (fy + PT - ki·DH) / SH` and column `b + (fx + PL - kj·DW) / SW` for
/// dx row `fy + a·SH` and column `fx + b·SW`: a stride-1 correlation per phase, contiguous in `b`.
/// Each phase row is computed into a small buffer and interleaved into the dx row.
static CK_ATTR int CK_FN(depthwise_backward_input)(
    const float *dy, const float *w, float *dx, const ck_conv_geom *g,
    int multiplier, int plane0, int plane1)
{
    const int C = g->C, H = g->H, W = g->W, KH = g->KH, KW = g->KW;
    const int SH = g->SH, SW = g->SW, DH = g->DH, DW = g->DW, PT = g->PT, PL = g->PL;
    const int OH = g->OH, OW = g->OW, O = C * multiplier;
    const int taps = KH * KW;
    if (SH == 1 && SW == 1 && PT <= (KH - 1) * DH && PL <= (KW - 1) * DW) {
        ck_conv_geom t = *g;
        t.H = OH; t.W = OW; t.OH = H; t.OW = W;
        t.PT = (KH - 1) * DH - PT; t.PL = (KW - 1) * DW - PL;
        const int Wr = (W + CK_VL - 1) / CK_VL * CK_VL;
        const int PLn = Wr + (KW - 1) * DW + 1;
        float *buf = (float *)malloc((((size_t)OH + 1) * PLn + (size_t)taps) * sizeof(float));
        if (!buf) return -1;
        float *zero = buf + (size_t)OH * PLn;
        float *wrot = zero + PLn;
        for (int i = 0; i < PLn; i++) zero[i] = 0;
        for (int p = plane0; p < plane1; p++) {
            int n = p / C, c = p % C;
            float *dxp = dx + (long)p * H * W;
            for (int m = 0; m < multiplier; m++) {
                int o = c * multiplier + m;
                const float *wp = w + (long)o * taps;
                for (int i = 0; i < taps; i++) wrot[i] = wp[taps - 1 - i];
                CK_FN(dw_fill)(dy + ((long)n * O + o) * OH * OW, buf, &t, PLn);
                if (KH == 3 && KW == 3)
                    CK_FN(dw_plane)(buf, zero, wrot, 0, dxp, &t, PLn, 0, 0, 0, m > 0, 3, 3);
                else if (KH == 5 && KW == 5)
                    CK_FN(dw_plane)(buf, zero, wrot, 0, dxp, &t, PLn, 0, 0, 0, m > 0, 5, 5);
                else
                    CK_FN(dw_plane)(buf, zero, wrot, 0, dxp, &t, PLn, 0, 0, 0, m > 0, KH, KW);
            }
        }
        free(buf);
        return 0;
    }

    // Polyphase. Column taps per phase fx: kj and the dy column offset rx.
    const int BW = (W + SW - 1) / SW;
    const int BWr = (BW + CK_VL - 1) / CK_VL * CK_VL;
    int *nkj = (int *)malloc(((size_t)SW * (1 + 2 * KW) + 2 * (size_t)KH + (size_t)taps) * sizeof(int));
    const float **ptrs = (const float **)malloc((size_t)taps * sizeof(float *));
    if (!nkj || !ptrs) { free(nkj); free(ptrs); return -1; }
    int *kjs = nkj + SW, *rxs = kjs + (size_t)SW * KW, *kis = rxs + (size_t)SW * KW, *rys = kis + KH;
    int *tw = rys + KH;  // tap weight indices
    int minrx = 0, maxrx = 0;
    for (int fx = 0; fx < SW; fx++) {
        nkj[fx] = 0;
        for (int kj = 0; kj < KW; kj++) {
            int num = fx + PL - kj * DW;
            int rx = CK_FN(floordiv)(num, SW);
            if (num - rx * SW != 0) continue;
            kjs[fx * KW + nkj[fx]] = kj;
            rxs[fx * KW + nkj[fx]] = rx;
            nkj[fx]++;
            if (rx < minrx) minrx = rx;
            if (rx > maxrx) maxrx = rx;
        }
    }
    const int QL = -minrx;                 // zero columns left of dy column 0
    const int PW = QL + BWr + maxrx;       // reads b + rx + QL < BWr + maxrx + QL
    const int copyW = OW < PW - QL ? OW : PW - QL;
    float *buf = (float *)malloc(((size_t)OH * PW + (size_t)SW * BWr + (size_t)taps) * sizeof(float));
    if (!buf) { free(nkj); free(ptrs); return -1; }
    float *tmp = buf + (size_t)OH * PW;
    float *wts = tmp + (size_t)SW * BWr;
    for (int p = plane0; p < plane1; p++) {
        int n = p / C, c = p % C;
        float *dxp = dx + (long)p * H * W;
        for (int m = 0; m < multiplier; m++) {
            int o = c * multiplier + m;
            const float *wp = w + (long)o * taps;
            const float *dyp = dy + ((long)n * O + o) * OH * OW;
            for (int oy = 0; oy < OH; oy++) {
                float *row = buf + (size_t)oy * PW;
                for (int j = 0; j < QL; j++) row[j] = 0;
                if (copyW > 0) __builtin_memcpy(row + QL, dyp + (long)oy * OW, (size_t)copyW * sizeof(float));
                for (int j = QL + (copyW > 0 ? copyW : 0); j < PW; j++) row[j] = 0;
            }
            for (int fy = 0; fy < SH; fy++) {
                int nki = 0;
                for (int ki = 0; ki < KH; ki++) {
                    int num = fy + PT - ki * DH;
                    int ry = CK_FN(floordiv)(num, SH);
                    if (num - ry * SH != 0) continue;
                    kis[nki] = ki;
                    rys[nki] = ry;
                    nki++;
                }
                for (int iy = fy; iy < H; iy += SH) {
                    int a = (iy - fy) / SH;
                    float *out = dxp + (long)iy * W;
                    for (int fx = 0; fx < SW; fx++) {
                        int nt = 0;
                        for (int i = 0; i < nki; i++) {
                            int r = a + rys[i];
                            if (r < 0 || r >= OH) continue;
                            const float *rp = buf + (size_t)r * PW + QL;
                            for (int k = 0; k < nkj[fx]; k++) {
                                ptrs[nt] = rp + rxs[fx * KW + k];
                                tw[nt] = kis[i] * KW + kjs[fx * KW + k];
                                nt++;
                            }
                        }
                        float *t = tmp + (size_t)fx * BWr;
                        if (nt == 0) {
                            for (int b = 0; b < BWr; b++) t[b] = 0;
                            continue;
                        }
                        for (int i = 0; i < nt; i++) wts[i] = wp[tw[i]];
                        for (int b = 0; b < BWr; b += CK_VL) {
                            VF acc = CK_FN(splat)(wts[0]) * CK_FN(load)(ptrs[0] + b);
                            for (int i = 1; i < nt; i++)
                                acc = acc + CK_FN(splat)(wts[i]) * CK_FN(load)(ptrs[i] + b);
                            CK_FN(store)(t + b, acc);
                        }
                    }
                    // Interleave the phase rows into the dx row.
                    if (SW == 1) {
                        if (m == 0) __builtin_memcpy(out, tmp, (size_t)W * sizeof(float));
                        else for (int ix = 0; ix < W; ix++) out[ix] += tmp[ix];
                    } else if (SW == 2) {
                        const float *t0 = tmp, *t1 = tmp + BWr;
                        int b = 0;
                        for (; 2 * b + 2 * CK_VL <= W; b += CK_VL) {
                            VF v0 = CK_FN(load)(t0 + b), v1 = CK_FN(load)(t1 + b);
                            VF lo = __builtin_shufflevector(v0, v1, CK_ILO);
                            VF hi = __builtin_shufflevector(v0, v1, CK_IHI);
                            if (m > 0) {
                                lo = lo + CK_FN(load)(out + 2 * b);
                                hi = hi + CK_FN(load)(out + 2 * b + CK_VL);
                            }
                            CK_FN(store)(out + 2 * b, lo);
                            CK_FN(store)(out + 2 * b + CK_VL, hi);
                        }
                        for (int ix = 2 * b; ix < W; ix++) {
                            float v = tmp[(ix & 1) * BWr + (ix >> 1)];
                            out[ix] = m > 0 ? out[ix] + v : v;
                        }
                    } else {
                        for (int fx = 0; fx < SW; fx++) {
                            const float *t = tmp + (size_t)fx * BWr;
                            if (m == 0) for (int ix = fx, b = 0; ix < W; ix += SW, b++) out[ix] = t[b];
                            else for (int ix = fx, b = 0; ix < W; ix += SW, b++) out[ix] += t[b];
                        }
                    }
                }
            }
        }
    }
    free(buf); free(nkj); free(ptrs);
    return 0;
}

static CK_ATTR int CK_FN(depthwise_backward_filter)(
    const float *x, const float *dy, float *dw, const ck_conv_geom *g,
    int multiplier, int batch, int o0, int o1)
{
    const int C = g->C, H = g->H, W = g->W, KH = g->KH, KW = g->KW;
    const int SH = g->SH, SW = g->SW, DH = g->DH, DW = g->DW, PT = g->PT;
    const int OH = g->OH, OW = g->OW, O = C * multiplier;
    const int OWr = (OW + CK_VL - 1) / CK_VL * CK_VL;
    const int PLn = OWr + ((KW - 1) * DW) / SW + 1;
    const int taps = KH * KW;
    size_t rowFloats = (size_t)SW * PLn;
    size_t bufFloats = ((size_t)H + 1) * rowFloats + (size_t)OWr;
    float *buf = (float *)malloc(bufFloats * sizeof(float));
    // Vector-aligned (malloc only guarantees 16 bytes; the compiler uses aligned moves on VF *).
    VF *acc = (VF *)aligned_alloc(64, ((size_t)taps * sizeof(VF) + 63) / 64 * 64);
    int *offs = (int *)malloc((size_t)KW * sizeof(int));
    const float **rows = (const float **)malloc((size_t)KH * sizeof(float *));
    if (!buf || !acc || !offs || !rows) {
        free(buf); free(acc); free(offs); free(rows);
        return -1;
    }
    float *zero = buf + (size_t)H * rowFloats;
    float *dyrow = zero + rowFloats;
    for (size_t i = 0; i < rowFloats; i++) zero[i] = 0;
    for (int i = OW; i < OWr; i++) dyrow[i] = 0;
    for (int kj = 0; kj < KW; kj++) offs[kj] = ((kj * DW) % SW) * PLn + (kj * DW) / SW;
    for (int o = o0; o < o1; o++) {
        int c = o / multiplier;
        for (int t = 0; t < taps; t++) acc[t] = CK_FN(splat)(0);
        for (int n = 0; n < batch; n++) {
            CK_FN(dw_fill)(x + ((long)n * C + c) * H * W, buf, g, PLn);
            const float *dyp = dy + ((long)n * O + o) * OH * OW;
            for (int oy = 0; oy < OH; oy++) {
                __builtin_memcpy(dyrow, dyp + (long)oy * OW, (size_t)OW * sizeof(float));
                for (int ki = 0; ki < KH; ki++) {
                    int r = oy * SH + ki * DH - PT;
                    rows[ki] = (r >= 0 && r < H) ? buf + (long)r * rowFloats : zero;
                }
                for (int ox = 0; ox < OWr; ox += CK_VL) {
                    VF d = CK_FN(load)(dyrow + ox);
                    for (int ki = 0; ki < KH; ki++)
                        for (int kj = 0; kj < KW; kj++)
                            acc[ki * KW + kj] = acc[ki * KW + kj] + d * CK_FN(load)(rows[ki] + offs[kj] + ox);
                }
            }
        }
        for (int t = 0; t < taps; t++) dw[(long)o * taps + t] = CK_FN(hsum)(acc[t]);
    }
    free(buf); free(acc); free(offs); free(rows);
    return 0;
}

// MARK: Max pooling
//
// The same phase-split row buffer as the depthwise kernel, filled with -inf outside the image
// (a padded tap then never wins a window that has an input tap), and NaN-propagating maxima
// (ONNX / PyTorch: a NaN in a window is its maximum).

typedef int CK_FN(vi) __attribute__((vector_size(CK_VL * 4)));
#define VI CK_FN(vi)

/// Fills the phase-split buffer of one plane (as `dw_fill`), `pad` outside the image.
static inline __attribute__((always_inline)) CK_ATTR void CK_FN(pool_fill)(
    const float *restrict xp, float *restrict buf, const ck_conv_geom *g, int PLn, float pad)
{
    const int H = g->H, W = g->W, SW = g->SW, PL = g->PL;
    for (int iy = 0; iy < H; iy++) {
        const float *xr = xp + (long)iy * W;
        float *row = buf + (long)iy * SW * PLn;
        for (int f = 0; f < SW; f++) {
            float *dst = row + (long)f * PLn;
            int lo = PL - f > 0 ? (PL - f + SW - 1) / SW : 0;
            int hi = W + PL - f > 0 ? (W + PL - f + SW - 1) / SW : 0;
            if (hi > PLn) hi = PLn;
            if (lo > hi) lo = hi;
            for (int j = 0; j < lo; j++) dst[j] = pad;
            const float *src = xr + f - PL;
            if (SW == 1) {
                if (hi > lo) __builtin_memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
            } else {
#pragma clang loop vectorize(disable)
                for (int j = lo; j < hi; j++) dst[j] = src[(long)j * SW];
            }
            for (int j = hi; j < PLn; j++) dst[j] = pad;
        }
    }
}

/// Bitwise select: lanes of `a` where `mask` is set, else lanes of `b`.
static inline __attribute__((always_inline)) CK_ATTR VF CK_FN(select)(VI mask, VF a, VF b) {
    return (VF)(((VI)a & mask) | ((VI)b & ~mask));
}

/// Forward max pooling of planes `plane0..<plane1` (`x` and `y` at plane 0). Returns 0 or -1.
static CK_ATTR int CK_FN(maxpool_forward)(const float *x, float *y, const ck_conv_geom *g,
                                          int plane0, int plane1)
{
    const int H = g->H, W = g->W, KH = g->KH, KW = g->KW, SH = g->SH, SW = g->SW, DH = g->DH, DW = g->DW;
    const int PT = g->PT, PL = g->PL, OH = g->OH, OW = g->OW;
    const int OWr = (OW + CK_VL - 1) / CK_VL * CK_VL;
    const int PLn = OWr + ((KW - 1) * DW) / SW + 1;
    const size_t rowFloats = (size_t)SW * PLn;
    const float ninf = -__builtin_inff();
    float *buf = (float *)malloc(((size_t)H + 1) * rowFloats * sizeof(float));
    int *offs = (int *)malloc((size_t)KW * sizeof(int));
    if (!buf || !offs) { free(buf); free(offs); return -1; }
    float *none = buf + (size_t)H * rowFloats;
    for (size_t i = 0; i < rowFloats; i++) none[i] = ninf;
    for (int kj = 0; kj < KW; kj++) offs[kj] = ((kj * DW) % SW) * PLn + (kj * DW) / SW;
    for (int p = plane0; p < plane1; p++) {
        CK_FN(pool_fill)(x + (long)p * H * W, buf, g, PLn, ninf);
        float *yp = y + (long)p * OH * OW;
        for (int oy = 0; oy < OH; oy++) {
            float *yr = yp + (long)oy * OW;
            for (int ox = 0; ox < OW; ox += CK_VL) {
                // Starting from -FLT_MAX (as ONNX Runtime): a window without input taps, or of
                // -inf inputs only, yields -FLT_MAX.
                VF best = CK_FN(splat)(-__FLT_MAX__);
                VI nan = (VI)CK_FN(splat)(0);
                for (int ki = 0; ki < KH; ki++) {
                    int r = oy * SH + ki * DH - PT;
                    const float *rp = (r >= 0 && r < H ? buf + (size_t)r * rowFloats : none) + ox;
                    for (int kj = 0; kj < KW; kj++) {
                        VF v = CK_FN(load)(rp + offs[kj]);
                        nan |= (VI)(v != v);
                        best = __builtin_elementwise_max(best, v);
                    }
                }
                // NaN wins: a quiet NaN in every lane that saw one.
                best = CK_FN(select)(nan, CK_FN(splat)(__builtin_nanf("")), best);
                if (ox + CK_VL <= OW) {
                    CK_FN(store)(yr + ox, best);
                } else {
                    float tmp[CK_VL];
                    CK_FN(store)(tmp, best);
                    for (int i = 0; i < OW - ox; i++) yr[ox + i] = tmp[i];
                }
            }
        }
    }
    free(buf); free(offs);
    return 0;
}

/// The pullback of max pooling for planes `plane0..<plane1`: adds each output gradient to the
/// first NaN of its window if there is one, else to the first maximal input tap in scan order
/// (row by row, left to right; PyTorch's CPU rule). `dx` must be zero (or hold gradients to add
/// to) on entry. Returns 0 or -1.
static CK_ATTR int CK_FN(maxpool_backward)(const float *x, const float *dy, float *dx, const ck_conv_geom *g,
                                           int plane0, int plane1)
{
    const int H = g->H, W = g->W, KH = g->KH, KW = g->KW, SH = g->SH, SW = g->SW, DH = g->DH, DW = g->DW;
    const int PT = g->PT, PL = g->PL, OH = g->OH, OW = g->OW;
    const int OWr = (OW + CK_VL - 1) / CK_VL * CK_VL;
    const int PLn = OWr + ((KW - 1) * DW) / SW + 1;
    const size_t rowFloats = (size_t)SW * PLn;
    const float ninf = -__builtin_inff();
    float *buf = (float *)malloc(((size_t)H * rowFloats + 2 * (size_t)CK_VL) * sizeof(float));
    int *offs = (int *)malloc(((size_t)KW + 2 * CK_VL) * sizeof(int));
    if (!buf || !offs) { free(buf); free(offs); return -1; }
    for (int kj = 0; kj < KW; kj++) offs[kj] = ((kj * DW) % SW) * PLn + (kj * DW) / SW;
    int *lane = offs + KW, *winner = lane + CK_VL;
    for (int i = 0; i < CK_VL; i++) lane[i] = i;
    VI iota;
    __builtin_memcpy(&iota, lane, sizeof iota);
    const VI zero = (VI)CK_FN(splat)(0);
    for (int p = plane0; p < plane1; p++) {
        CK_FN(pool_fill)(x + (long)p * H * W, buf, g, PLn, ninf);
        const float *gp = dy + (long)p * OH * OW;
        float *dp = dx + (long)p * H * W;
        for (int oy = 0; oy < OH; oy++) {
            for (int ox = 0; ox < OW; ox += CK_VL) {
                VF best = CK_FN(splat)(ninf);
                VI index = zero - 1, have = zero, bestNaN = zero;
                VI col0 = (iota + ox) * SW - PL;
                for (int ki = 0; ki < KH; ki++) {
                    int r = oy * SH + ki * DH - PT;
                    if (r < 0 || r >= H) continue;
                    const float *rp = buf + (size_t)r * rowFloats + ox;
                    for (int kj = 0; kj < KW; kj++) {
                        VI col = col0 + kj * DW;
                        VI valid = (col >= 0) & (col < W);
                        VF v = CK_FN(load)(rp + offs[kj]);
                        VI isNaN = (VI)(v != v);
                        VI take = valid & (~have | (VI)(v > best) | (isNaN & ~bestNaN));
                        best = CK_FN(select)(take, v, best);
                        index = (index & ~take) | ((col + r * W) & take);
                        bestNaN = (bestNaN & ~take) | (isNaN & take);
                        have |= valid;
                    }
                }
                __builtin_memcpy(winner, &index, sizeof index);
                int n = OW - ox < CK_VL ? OW - ox : CK_VL;
                const float *gr = gp + (long)oy * OW + ox;
                for (int i = 0; i < n; i++)
                    if (winner[i] >= 0) dp[winner[i]] += gr[i];
            }
        }
    }
    free(buf); free(offs);
    return 0;
}

#undef VI

static CK_ATTR void CK_FN(bias_activation)(float *y, int rows, int cols, long ldy, const float *bias,
                                           int clamp, float lo, float hi)
{
    const VF lov = CK_FN(splat)(lo), hiv = CK_FN(splat)(hi);
    for (int r = 0; r < rows; r++) {
        float *yr = y + (long)r * ldy;
        float b = bias ? bias[r] : 0.0f;
        VF bv = CK_FN(splat)(b);
        int j = 0;
        for (; j + CK_VL <= cols; j += CK_VL) {
            VF v = CK_FN(load)(yr + j) + bv;
            if (clamp) v = CK_FN(clampv)(v, lov, hiv);
            CK_FN(store)(yr + j, v);
        }
        for (; j < cols; j++) {
            float v = yr[j] + b;
            if (clamp) v = v < lo ? lo : (v > hi ? hi : v);
            yr[j] = v;
        }
    }
}

#undef VF
#undef CK_FN
#undef CK_CAT
#undef CK_CAT2
