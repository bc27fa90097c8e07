// Fused CPU kernel of SphereConv2d: a bilinear im2col built row by row, multiplied tile by tile.
//
// The tap pattern of a spherical convolution depends on the output row only (yaw symmetry): tap k
// of output pixel (i, j) reads the input at rows rows[i, k, 0] (upper corners) and rows[i, k, 1]
// (lower corners), at columns (cols[i, k, .] + j * s) mod W and the next column, with the four
// bilinear weights wts[i, k, :]. The pole rule is folded into the tables (a corner past a pole
// reads the mirrored row, its column shifted by W / 2), so the input needs no padded copy.
//
// The input is read channels-last (B, H, W, C): a tap's four corners are contiguous channel
// vectors, and the im2col tile (pixels x taps * channels) is the row-major left operand of
// oneDNN's matrix product, which on AVX-512 machines is several times faster than the BLAS one.
#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace {

struct Tables {
  const int64_t* rows;  // (Ho, K, 2): input rows of the upper and lower corners
  const int64_t* cols;  // (Ho, K, 2): their left columns for output column 0, in [0, W)
  int64_t K, W, Wo, s, C;
};

struct Corners {
  int64_t rt, rb, ct, cb;
};

inline Corners corners(const Tables& tb, int64_t t) {
  return {tb.rows[2 * t], tb.rows[2 * t + 1], tb.cols[2 * t], tb.cols[2 * t + 1]};
}

// buf (L, K * cg), L = (i1 - i0) * Wo: row p = (i - i0) * Wo + j holds, tap after tap, the cg
// channels (from c_off) of output pixel (i, j).
template <typename T>
void fill_cols(const T* x, int64_t c_off, int64_t cg, const Tables& tb, const T* wts, int64_t i0,
               int64_t i1, T* buf) {
  const int64_t kc = tb.K * cg, row = tb.W * tb.C;
  for (int64_t i = i0; i < i1; ++i) {
    for (int64_t k = 0; k < tb.K; ++k) {
      const int64_t t = i * tb.K + k;
      Corners q = corners(tb, t);
      const T* top = x + q.rt * row + c_off;
      const T* bot = x + q.rb * row + c_off;
      const T w00 = wts[4 * t], w01 = wts[4 * t + 1], w10 = wts[4 * t + 2], w11 = wts[4 * t + 3];
      T* d = buf + (i - i0) * tb.Wo * kc + k * cg;
      for (int64_t j = 0; j < tb.Wo; ++j, d += kc) {
        const T* a0 = top + q.ct * tb.C;
        const T* a1 = top + (q.ct + 1 == tb.W ? 0 : q.ct + 1) * tb.C;
        const T* b0 = bot + q.cb * tb.C;
        const T* b1 = bot + (q.cb + 1 == tb.W ? 0 : q.cb + 1) * tb.C;
        for (int64_t c = 0; c < cg; ++c) d[c] = w00 * a0[c] + w01 * a1[c] + w10 * b0[c] + w11 * b1[c];
        q.ct += tb.s;
        if (q.ct >= tb.W) q.ct -= tb.W;
        q.cb += tb.s;
        if (q.cb >= tb.W) q.cb -= tb.W;
      }
    }
  }
}

// The same taps from a channels-first input x (cg, H, W), written transposed: buf (K * cg, L),
// row k * cg + c, column p. Used for the weight gradient, whose product wants this layout; each
// row is filled by contiguous runs between the seam crossings (vectorised for stride 1).
template <typename T>
void fill_cols_planar(const T* x, int64_t c_begin, int64_t c_end, int64_t cg, int64_t h,
                      const Tables& tb, const T* wts, int64_t i0, int64_t i1, T* buf) {
  const int64_t L = (i1 - i0) * tb.Wo, W = tb.W, s = tb.s;
  for (int64_t c = c_begin; c < c_end; ++c) {
    const T* xc = x + c * h * W;
    for (int64_t k = 0; k < tb.K; ++k) {
      T* row = buf + (k * cg + c) * L;
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t t = i * tb.K + k;
        Corners q = corners(tb, t);
        const T* top = xc + q.rt * W;
        const T* bot = xc + q.rb * W;
        const T w00 = wts[4 * t], w01 = wts[4 * t + 1], w10 = wts[4 * t + 2], w11 = wts[4 * t + 3];
        T* d = row + (i - i0) * tb.Wo;
        int64_t j = 0;
        while (j < tb.Wo) {
          // Outputs whose four corners all lie left of the seam: one straight run.
          const int64_t room = std::min(W - 1 - q.ct, W - 1 - q.cb);
          const int64_t n = std::min(tb.Wo - j, room > 0 ? (room + s - 1) / s : 0);
          if (n > 0) {
            const T* a = top + q.ct;
            const T* b = bot + q.cb;
            if (s == 1) {
              for (int64_t m = 0; m < n; ++m)
                d[j + m] = w00 * a[m] + w01 * a[m + 1] + w10 * b[m] + w11 * b[m + 1];
            } else {
              for (int64_t m = 0; m < n; ++m) {
                const int64_t o = m * s;
                d[j + m] = w00 * a[o] + w01 * a[o + 1] + w10 * b[o] + w11 * b[o + 1];
              }
            }
          } else {  // a corner on the last column: its right neighbour is column 0
            const int64_t ct1 = q.ct + 1 == W ? 0 : q.ct + 1, cb1 = q.cb + 1 == W ? 0 : q.cb + 1;
            d[j] = w00 * top[q.ct] + w01 * top[ct1] + w10 * bot[q.cb] + w11 * bot[cb1];
          }
          const int64_t step = std::max<int64_t>(n, 1);
          j += step;
          q.ct = (q.ct + step * s) % W;
          q.cb = (q.cb + step * s) % W;
        }
      }
    }
  }
}

// The adjoint of fill_cols for channels [c_begin, c_end) of the group: gx (H, W, C) += ...
template <typename T>
void scatter_cols(const T* buf, int64_t c_off, int64_t cg, int64_t c_begin, int64_t c_end,
                  const Tables& tb, const T* wts, int64_t i0, int64_t i1, T* gx) {
  const int64_t kc = tb.K * cg, row = tb.W * tb.C;
  for (int64_t i = i0; i < i1; ++i) {
    for (int64_t k = 0; k < tb.K; ++k) {
      const int64_t t = i * tb.K + k;
      Corners q = corners(tb, t);
      T* top = gx + q.rt * row + c_off;
      T* bot = gx + q.rb * row + c_off;
      const T w00 = wts[4 * t], w01 = wts[4 * t + 1], w10 = wts[4 * t + 2], w11 = wts[4 * t + 3];
      const T* g = buf + (i - i0) * tb.Wo * kc + k * cg;
      for (int64_t j = 0; j < tb.Wo; ++j, g += kc) {
        T* a0 = top + q.ct * tb.C;
        T* a1 = top + (q.ct + 1 == tb.W ? 0 : q.ct + 1) * tb.C;
        T* b0 = bot + q.cb * tb.C;
        T* b1 = bot + (q.cb + 1 == tb.W ? 0 : q.cb + 1) * tb.C;
        for (int64_t c = c_begin; c < c_end; ++c) {
          const T v = g[c];
          a0[c] += w00 * v;
          a1[c] += w01 * v;
          b0[c] += w10 * v;
          b1[c] += w11 * v;
        }
        q.ct += tb.s;
        if (q.ct >= tb.W) q.ct -= tb.W;
        q.cb += tb.s;
        if (q.cb >= tb.W) q.cb -= tb.W;
      }
    }
  }
}

// Kernels that gain from wide vectors are compiled for AVX-512 and AVX2 machines as well as the
// baseline, the best chosen when the library loads (GCC and Clang on x86-64 Linux).
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define PANO360_VECTOR_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef PANO360_VECTOR_CLONES
#define PANO360_VECTOR_CLONES
#endif

// dst (S, R) = src (R, S) transposed, rows [r0, r0 + kTransposeBlock) of src and columns
// [s_begin, s_end), in blocks of kTransposeBlock squared that stay in L1 (one cache line of
// float32 across): how the im2col fill and the channels-last depthwise kernels' layout
// conversions (transpose_maps) transpose, about the time of a plain copy where torch's permuted
// copy takes two to three times that.
constexpr int64_t kTransposeBlock = 16;

template <typename T>
inline __attribute__((always_inline)) void transpose_block_impl(const T* __restrict__ src,
                                                                 int64_t R, int64_t S, int64_t r0,
                                                                 int64_t s0, T* __restrict__ dst) {
  constexpr int64_t kB = kTransposeBlock;
  const int64_t r1 = std::min(R, r0 + kB), s1 = std::min(S, s0 + kB);
  if (r1 - r0 == kB && s1 - s0 == kB) {
    for (int64_t q = 0; q < kB; ++q)
      for (int64_t p = 0; p < kB; ++p) dst[(s0 + q) * R + r0 + p] = src[(r0 + p) * S + s0 + q];
    return;
  }
  for (int64_t q = s0; q < s1; ++q)
    for (int64_t p = r0; p < r1; ++p) dst[q * R + p] = src[p * S + q];
}

PANO360_VECTOR_CLONES
void transpose_blocks(const float* src, int64_t R, int64_t S, int64_t r0, int64_t s_begin,
                      int64_t s_end, float* dst) {
  for (int64_t s0 = s_begin; s0 < s_end; s0 += kTransposeBlock)
    transpose_block_impl(src, R, S, r0, s0, dst);
}

PANO360_VECTOR_CLONES
void transpose_blocks(const double* src, int64_t R, int64_t S, int64_t r0, int64_t s_begin,
                      int64_t s_end, double* dst) {
  for (int64_t s0 = s_begin; s0 < s_end; s0 += kTransposeBlock)
    transpose_block_impl(src, R, S, r0, s0, dst);
}

// dst (rows, n) = src (n, rows) transposed.
template <typename T>
void transpose(const T* src, int64_t n, int64_t rows, T* dst) {
  for (int64_t r0 = 0; r0 < n; r0 += kTransposeBlock)
    transpose_blocks(src, n, rows, r0, 0, rows, dst);
}

// Few channels per group: a channel-last tile is filled a handful of values at a time, so it is
// faster to fill the channels-first tile in vectorised runs and transpose it in cache.
constexpr int64_t kPlanarFillMaxChannels = 4;

// a (M, K) times b (N, K) transposed, plus bias (N): oneDNN's product for float32 where the
// build has it, the BLAS one otherwise (always inside a parallel region, which the kernels avoid).
torch::Tensor gemm_nt(const torch::Tensor& a, const torch::Tensor& b,
                      const std::optional<torch::Tensor>& bias) {
  static const std::optional<c10::OperatorHandle> onednn =
      c10::Dispatcher::singleton().findOp({"mkldnn::_linear_pointwise", ""});
  if (onednn && a.scalar_type() == torch::kFloat && !at::in_parallel_region()) {
    torch::jit::Stack stack{a,
                            b,
                            bias ? c10::IValue(*bias) : c10::IValue(),
                            c10::IValue(std::string("none")),
                            c10::IValue(c10::List<std::optional<at::Scalar>>()),
                            c10::IValue()};
    onednn->callBoxed(&stack);
    return stack[0].toTensor();
  }
  return bias ? torch::addmm(*bias, a, b.t()) : torch::mm(a, b.t());
}

int64_t tile_rows(int64_t taps_channels, int64_t wo, int64_t ho, int64_t elem) {
  // About 8 MiB of im2col per tile: few enough tiles that starting threads for each (a fill,
  // then a product) costs little, small enough to stay in the last-level cache.
  static const int64_t budget = [] {
    const char* kb = std::getenv("PANO360_TILE_KB");
    return kb ? std::atoll(kb) * 1024 : (int64_t(8) << 20);
  }();
  const int64_t per_row = std::max<int64_t>(1, taps_channels * wo * elem);
  return std::max<int64_t>(1, std::min<int64_t>(ho, budget / per_row));
}

void check(const torch::Tensor& x, const torch::Tensor& rows, const torch::Tensor& cols,
           const torch::Tensor& wts) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 4, "x: contiguous BHWC");
  TORCH_CHECK(rows.scalar_type() == torch::kLong && cols.scalar_type() == torch::kLong, "tables");
  TORCH_CHECK(rows.is_contiguous() && cols.is_contiguous() && wts.is_contiguous(), "tables");
  TORCH_CHECK(wts.scalar_type() == x.scalar_type(), "wts dtype");
}

// Depthwise convolutions (one input channel per group) have no matrix product to hand to oneDNN:
// they run plane by plane on channels-first maps, or channels-last (the *_cl kernels below,
// vectorised over channels) where that pays (see _fast.py). Of output row i, the 4 K bilinear
// corners of its K taps land on at most 4 K distinct input pixels (fewer: neighbouring taps
// share corners), the row's "entries" (row, column at output column 0), merged once in Python.
// Per row and channel the kernel folds the weights into one coefficient per entry, then adds coefficient
// times a run of the entry's input row to the output row (a vectorised axpy between seam
// crossings); the backward pass runs the same loops as scatters and dot products.
struct DwTables {
  const int64_t* rows;     // (Ho, E): input row of each entry
  const int64_t* cols;     // (Ho, E): its column at output column 0, in [0, W)
  const int64_t* count;    // (Ho,): entries used in each row (the rest is padding)
  const int64_t* corner;   // (Ho, K, 4): entry of each bilinear corner of each tap
  int64_t Ho, E, K, W, Wo, s;
};

// f(j, n, c): the outputs j .. j + n - 1 read input columns c, c + s, ... without crossing the
// seam.
template <typename F>
inline void for_runs(int64_t c, int64_t wo, int64_t s, int64_t w, F f) {
  for (int64_t j = 0; j < wo;) {
    const int64_t n = std::min(wo - j, (w - c + s - 1) / s);
    f(j, n, c);
    j += n;
    c = (c + n * s) % w;
  }
}

// coef[e] = sum over the corners of row i on entry e of weight[k] times the corner's weight.
template <typename T>
inline void dw_coefficients(const DwTables& tb, const T* wts, const T* weight, int64_t i, T* coef) {
  std::fill(coef, coef + tb.count[i], T(0));
  const int64_t* corner = tb.corner + i * tb.K * 4;
  const T* wt = wts + i * tb.K * 4;
  for (int64_t k = 0; k < tb.K; ++k)
    for (int64_t q = 0; q < 4; ++q) coef[corner[4 * k + q]] += weight[k] * wt[4 * k + q];
}

// out (Ho, Wo) = bias + the depthwise convolution of the plane x (H, W) with weight (K,).
template <typename T>
void dw_plane_forward(const T* __restrict__ x, const T* weight, T bias, const DwTables& tb,
                      const T* wts, T* __restrict__ out, T* coef) {
  const int64_t s = tb.s;
  for (int64_t i = 0; i < tb.Ho; ++i) {
    T* __restrict__ o = out + i * tb.Wo;
    std::fill(o, o + tb.Wo, bias);
    dw_coefficients(tb, wts, weight, i, coef);
    for (int64_t e = 0; e < tb.count[i]; ++e) {
      const T a = coef[e];
      const T* __restrict__ xr = x + tb.rows[i * tb.E + e] * tb.W;
      for_runs(tb.cols[i * tb.E + e], tb.Wo, s, tb.W, [&](int64_t j, int64_t n, int64_t c) {
        T* __restrict__ d = o + j;
        const T* __restrict__ r = xr + c;
        if (s == 1) {
          for (int64_t m = 0; m < n; ++m) d[m] += a * r[m];
        } else {
          for (int64_t m = 0; m < n; ++m) d[m] += a * r[m * s];
        }
      });
    }
  }
}

// The adjoint of dw_plane_forward for one plane: gx (H, W) += ..., and gw (K,) += the weight
// gradient (accumulated in double); either may be null.
template <typename T>
void dw_plane_backward(const T* __restrict__ g, const T* __restrict__ x, const T* weight,
                       const DwTables& tb, const T* wts, T* __restrict__ gx, double* gw, T* coef,
                       double* dots) {
  const int64_t s = tb.s;
  for (int64_t i = 0; i < tb.Ho; ++i) {
    const T* __restrict__ gr = g + i * tb.Wo;
    if (gx) dw_coefficients(tb, wts, weight, i, coef);
    for (int64_t e = 0; e < tb.count[i]; ++e) {
      const int64_t row = tb.rows[i * tb.E + e], col = tb.cols[i * tb.E + e];
      if (gx) {
        const T a = coef[e];
        T* __restrict__ gxr = gx + row * tb.W;
        for_runs(col, tb.Wo, s, tb.W, [&](int64_t j, int64_t n, int64_t c) {
          const T* __restrict__ src = gr + j;
          T* __restrict__ d = gxr + c;
          if (s == 1) {
            for (int64_t m = 0; m < n; ++m) d[m] += a * src[m];
          } else {
            for (int64_t m = 0; m < n; ++m) d[m * s] += a * src[m];
          }
        });
      }
      if (gw) {
        const T* __restrict__ xr = x + row * tb.W;
        T sum = 0;
        for_runs(col, tb.Wo, s, tb.W, [&](int64_t j, int64_t n, int64_t c) {
          const T* __restrict__ src = gr + j;
          const T* __restrict__ r = xr + c;
          T part = 0;
          if (s == 1) {
            for (int64_t m = 0; m < n; ++m) part += src[m] * r[m];
          } else {
            for (int64_t m = 0; m < n; ++m) part += src[m] * r[m * s];
          }
          sum += part;
        });
        dots[e] = sum;
      }
    }
    if (gw) {
      const int64_t* corner = tb.corner + i * tb.K * 4;
      const T* wt = wts + i * tb.K * 4;
      for (int64_t k = 0; k < tb.K; ++k)
        for (int64_t q = 0; q < 4; ++q) gw[k] += double(wt[4 * k + q]) * dots[corner[4 * k + q]];
    }
  }
}

DwTables dw_tables(const torch::Tensor& rows, const torch::Tensor& cols, const torch::Tensor& count,
                   const torch::Tensor& corner, int64_t W, int64_t wo, int64_t s) {
  for (const auto* t : {&rows, &cols, &count, &corner})
    TORCH_CHECK(t->scalar_type() == torch::kLong && t->is_contiguous(), "depthwise tables");
  return {rows.data_ptr<int64_t>(), cols.data_ptr<int64_t>(), count.data_ptr<int64_t>(),
          corner.data_ptr<int64_t>(), rows.size(0), rows.size(1), corner.size(1), W, wo, s};
}

// Output pixels summed together by the channels-last depthwise kernel.
constexpr int64_t kDwPixels = 4;

// One cache line of channels as a vector (GCC and Clang vector extensions; the compiler lowers it
// to the widest registers of the target, two AVX2 or one AVX-512 register for float), loaded and
// stored unaligned. Other compilers take the scalar loops.
#if defined(__GNUC__)
#define PANO360_LINE_VECTORS 1
typedef float LineF __attribute__((vector_size(64), aligned(4)));
typedef double LineD __attribute__((vector_size(64), aligned(8)));
template <typename T> struct LineOf;
template <> struct LineOf<float> { using type = LineF; };
template <> struct LineOf<double> { using type = LineD; };
#endif

// Where entry e reads for output pixel j0 + jj of a block of kDwPixels pixels (jn of them real;
// the others repeat the last), in elements of x (H, W, C): base[e] + step[jj] when no entry's
// columns cross the seam inside the block (returns true, the usual case), else
// offsets[e * kDwPixels + jj]. col[e] and base[e] hold the block's first column and its place;
// call with j0 = 0, kDwPixels, ... in turn (j0 = 0 sets them up, later blocks step them on).
inline __attribute__((always_inline)) bool block_addresses(
    const int64_t* erow, const int64_t* ecol, int64_t n, int64_t W, int64_t C, int64_t s,
    int64_t j0, int64_t jn, int64_t* col, int64_t* base, int64_t* step, int64_t* offsets) {
  constexpr int64_t P = kDwPixels;
  bool straight = true;
  if (j0 == 0) {
    for (int64_t e = 0; e < n; ++e) {
      col[e] = ecol[e];
      base[e] = (erow[e] * W + ecol[e]) * C;
    }
  } else {
    for (int64_t e = 0; e < n; ++e) {
      int64_t c = col[e] + P * s;
      if (c >= W) c %= W;  // past the seam
      base[e] += (c - col[e]) * C;
      col[e] = c;
    }
  }
  for (int64_t e = 0; e < n; ++e) straight &= col[e] + s * (jn - 1) < W;
  for (int64_t jj = 0; jj < P; ++jj) step[jj] = std::min(jj, jn - 1) * s * C;
  if (!straight) {
    for (int64_t e = 0; e < n; ++e) {
      for (int64_t jj = 0; jj < P; ++jj) {
        const int64_t c = col[e] + std::min(jj, jn - 1) * s;  // < 2 W: s (j - j0) < W
        offsets[e * P + jj] = base[e] + step[jj] - (c >= W ? W * C : 0);
      }
    }
  }
  return straight;
}

// out (Wo, C) = bias + the sum over entries e of coef[e] (C,) times the input x (H, W, C) at row
// erow[e], column (ecol[e] + s j) mod W, for output pixels j. Blocks of kDwPixels pixels by one
// cache line of channels (kLine) are accumulated in registers; the last pixel block repeats its
// last pixel and stores only the real ones. base, offsets: 2 n and kDwPixels * n scratch.
template <typename T>
inline __attribute__((always_inline)) void dw_cl_row_impl(
    const T* __restrict__ x, const T* __restrict__ coef, const int64_t* erow, const int64_t* ecol,
    int64_t n, const T* bias, int64_t W, int64_t C, int64_t wo, int64_t s, int64_t* base,
    int64_t* offsets, T* __restrict__ out) {
  constexpr int64_t kLine = 64 / sizeof(T), P = kDwPixels;
  static_assert(P == 4, "the register blocks below are written out for 4 pixels");
  int64_t* col = base + n;
  for (int64_t j0 = 0; j0 < wo; j0 += P) {
    const int64_t jn = std::min(P, wo - j0);
    int64_t step[P];
    const bool straight =
        block_addresses(erow, ecol, n, W, C, s, j0, jn, col, base, step, offsets);
    T* o = out + j0 * C;
    auto run = [&](auto at) {  // at(e, jj): where entry e reads for pixel jj
      int64_t c0 = 0;
#ifdef PANO360_LINE_VECTORS
      using V = typename LineOf<T>::type;
      for (; c0 + kLine <= C; c0 += kLine) {
        V a0 = bias ? *reinterpret_cast<const V*>(bias + c0) : V{};
        V a1 = a0, a2 = a0, a3 = a0;
        const T* xc = x + c0;
        const T* cf = coef + c0;
        for (int64_t e = 0; e < n; ++e, cf += C) {
          const V w = *reinterpret_cast<const V*>(cf);
          a0 += w * *reinterpret_cast<const V*>(xc + at(e, 0));
          a1 += w * *reinterpret_cast<const V*>(xc + at(e, 1));
          a2 += w * *reinterpret_cast<const V*>(xc + at(e, 2));
          a3 += w * *reinterpret_cast<const V*>(xc + at(e, 3));
        }
        const V acc[P] = {a0, a1, a2, a3};
        for (int64_t jj = 0; jj < jn; ++jj) *reinterpret_cast<V*>(o + jj * C + c0) = acc[jj];
      }
#endif
      for (; c0 < C; c0 += kLine) {  // the channels left, or all of them without vectors
        const int64_t m = std::min(kLine, C - c0);
        T acc[P][kLine];
        for (int64_t jj = 0; jj < P; ++jj)
          for (int64_t c = 0; c < m; ++c) acc[jj][c] = bias ? bias[c0 + c] : T(0);
        for (int64_t e = 0; e < n; ++e) {
          const T* cf = coef + e * C + c0;
          for (int64_t jj = 0; jj < P; ++jj) {
            const T* r = x + at(e, jj) + c0;
            for (int64_t c = 0; c < m; ++c) acc[jj][c] += cf[c] * r[c];
          }
        }
        for (int64_t jj = 0; jj < jn; ++jj)
          for (int64_t c = 0; c < m; ++c) o[jj * C + c0 + c] = acc[jj][c];
      }
    };
    if (straight) {
      run([&](int64_t e, int64_t jj) { return base[e] + step[jj]; });
    } else {
      run([&](int64_t e, int64_t jj) { return offsets[e * P + jj]; });
    }
  }
}

PANO360_VECTOR_CLONES
void dw_cl_row(const float* x, const float* coef, const int64_t* erow, const int64_t* ecol,
               int64_t n, const float* bias, int64_t W, int64_t C, int64_t wo, int64_t s,
               int64_t* base, int64_t* offsets, float* out) {
  dw_cl_row_impl(x, coef, erow, ecol, n, bias, W, C, wo, s, base, offsets, out);
}

PANO360_VECTOR_CLONES
void dw_cl_row(const double* x, const double* coef, const int64_t* erow, const int64_t* ecol,
               int64_t n, const double* bias, int64_t W, int64_t C, int64_t wo, int64_t s,
               int64_t* base, int64_t* offsets, double* out) {
  dw_cl_row_impl(x, coef, erow, ecol, n, bias, W, C, wo, s, base, offsets, out);
}

// out (Wo, Cout) = bias + the sum over entries e and input channels c of coef[e, c] (Cout,) times
// the input x (H, W, Cin) at channel c, row erow[e], column (ecol[e] + s j) mod W: a convolution
// with few input channels read as dw_cl_row reads a depthwise one, each input value broadcast
// over a cache line of output channels.
template <typename T>
inline __attribute__((always_inline)) void conv_cl_row_impl(
    const T* __restrict__ x, const T* __restrict__ coef, const int64_t* erow, const int64_t* ecol,
    int64_t n, const T* bias, int64_t W, int64_t cin, int64_t cout, int64_t wo, int64_t s,
    int64_t* base, int64_t* offsets, T* __restrict__ out) {
  constexpr int64_t kLine = 64 / sizeof(T), P = kDwPixels;
  int64_t* col = base + n;
  for (int64_t j0 = 0; j0 < wo; j0 += P) {
    const int64_t jn = std::min(P, wo - j0);
    int64_t step[P];
    const bool straight =
        block_addresses(erow, ecol, n, W, cin, s, j0, jn, col, base, step, offsets);
    T* o = out + j0 * cout;
    auto run = [&](auto at) {  // at(e, jj): where entry e reads for pixel jj
      int64_t c0 = 0;
#ifdef PANO360_LINE_VECTORS
      using V = typename LineOf<T>::type;
      for (; c0 + kLine <= cout; c0 += kLine) {
        V a0 = bias ? *reinterpret_cast<const V*>(bias + c0) : V{};
        V a1 = a0, a2 = a0, a3 = a0;
        const T* cf = coef + c0;
        for (int64_t e = 0; e < n; ++e) {
          const T* x0 = x + at(e, 0);
          const T* x1 = x + at(e, 1);
          const T* x2 = x + at(e, 2);
          const T* x3 = x + at(e, 3);
          for (int64_t c = 0; c < cin; ++c, cf += cout) {
            const V w = *reinterpret_cast<const V*>(cf);
            a0 += w * x0[c];
            a1 += w * x1[c];
            a2 += w * x2[c];
            a3 += w * x3[c];
          }
        }
        const V acc[P] = {a0, a1, a2, a3};
        for (int64_t jj = 0; jj < jn; ++jj) *reinterpret_cast<V*>(o + jj * cout + c0) = acc[jj];
      }
#endif
      for (; c0 < cout; c0 += kLine) {  // the channels left, or all of them without vectors
        const int64_t m = std::min(kLine, cout - c0);
        T acc[P][kLine];
        for (int64_t jj = 0; jj < P; ++jj)
          for (int64_t q = 0; q < m; ++q) acc[jj][q] = bias ? bias[c0 + q] : T(0);
        for (int64_t e = 0; e < n; ++e) {
          for (int64_t c = 0; c < cin; ++c) {
            const T* w = coef + (e * cin + c) * cout + c0;
            for (int64_t jj = 0; jj < P; ++jj) {
              const T v = x[at(e, jj) + c];
              for (int64_t q = 0; q < m; ++q) acc[jj][q] += w[q] * v;
            }
          }
        }
        for (int64_t jj = 0; jj < jn; ++jj)
          for (int64_t q = 0; q < m; ++q) o[jj * cout + c0 + q] = acc[jj][q];
      }
    };
    if (straight) {
      run([&](int64_t e, int64_t jj) { return base[e] + step[jj]; });
    } else {
      run([&](int64_t e, int64_t jj) { return offsets[e * P + jj]; });
    }
  }
}

PANO360_VECTOR_CLONES
void conv_cl_row(const float* x, const float* coef, const int64_t* erow, const int64_t* ecol,
                 int64_t n, const float* bias, int64_t W, int64_t cin, int64_t cout, int64_t wo,
                 int64_t s, int64_t* base, int64_t* offsets, float* out) {
  conv_cl_row_impl(x, coef, erow, ecol, n, bias, W, cin, cout, wo, s, base, offsets, out);
}

PANO360_VECTOR_CLONES
void conv_cl_row(const double* x, const double* coef, const int64_t* erow, const int64_t* ecol,
                 int64_t n, const double* bias, int64_t W, int64_t cin, int64_t cout, int64_t wo,
                 int64_t s, int64_t* base, int64_t* offsets, double* out) {
  conv_cl_row_impl(x, coef, erow, ecol, n, bias, W, cin, cout, wo, s, base, offsets, out);
}

// The adjoint of dw_cl_row for channels [c0, c0 + width) of one output row: with kInput,
// gx (H, W, C) += coef[e] (width,) times the gradient g (Wo, C) of output pixel j at entry e's
// pixel for that j (row erow[e], column (ecol[e] + s j) mod W); with kWeight, dots (n, width) =
// the sum over j of g times x (H, W, C) at the same pixel, the entries' share of the weight
// gradient. One cache line of channels at a time, entry after entry, along runs of columns
// between seam crossings (g's line of a row stays in L1 across the entries).
template <typename T, bool kInput, bool kWeight>
inline __attribute__((always_inline)) void dw_cl_backward_row_impl(
    const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ coef,
    const int64_t* erow, const int64_t* ecol, int64_t n, int64_t W, int64_t C, int64_t wo,
    int64_t s, int64_t c0, int64_t width, T* __restrict__ gx, T* __restrict__ dots) {
  constexpr int64_t kLine = 64 / sizeof(T);
  const int64_t sc = s * C;
  for (int64_t l = 0; l < width; l += kLine) {
    const int64_t m = std::min(kLine, width - l);
    const T* gl = g + c0 + l;
    for (int64_t e = 0; e < n; ++e) {
      const int64_t at = erow[e] * W * C + c0 + l;  // entry e's input row, this line
      const T* xr = x + at;
      T* gxr = gx + at;
#ifdef PANO360_LINE_VECTORS
      if (m == kLine) {
        using V = typename LineOf<T>::type;
        const V a = kInput ? *reinterpret_cast<const V*>(coef + e * width + l) : V{};
        V d0{}, d1{};
        for_runs(ecol[e], wo, s, W, [&](int64_t j, int64_t len, int64_t col) {
          const T* gp = gl + j * C;
          int64_t off = col * C, q = 0;
          for (; q + 1 < len; q += 2, gp += 2 * C, off += 2 * sc) {
            const V g0 = *reinterpret_cast<const V*>(gp);
            const V g1 = *reinterpret_cast<const V*>(gp + C);
            if (kInput) {
              *reinterpret_cast<V*>(gxr + off) += a * g0;
              *reinterpret_cast<V*>(gxr + off + sc) += a * g1;
            }
            if (kWeight) {
              d0 += g0 * *reinterpret_cast<const V*>(xr + off);
              d1 += g1 * *reinterpret_cast<const V*>(xr + off + sc);
            }
          }
          if (q < len) {
            const V g0 = *reinterpret_cast<const V*>(gp);
            if (kInput) *reinterpret_cast<V*>(gxr + off) += a * g0;
            if (kWeight) d0 += g0 * *reinterpret_cast<const V*>(xr + off);
          }
        });
        if (kWeight) *reinterpret_cast<V*>(dots + e * width + l) = d0 + d1;
        continue;
      }
#endif
      // The channels left, or all of them without vectors.
      T dot[kLine] = {};
      const T* a = kInput ? coef + e * width + l : nullptr;
      for_runs(ecol[e], wo, s, W, [&](int64_t j, int64_t len, int64_t col) {
        for (int64_t q = 0; q < len; ++q) {
          const T* gp = gl + (j + q) * C;
          const int64_t off = (col + q * s) * C;
          for (int64_t c = 0; c < m; ++c) {
            if (kInput) gxr[off + c] += a[c] * gp[c];
            if (kWeight) dot[c] += gp[c] * xr[off + c];
          }
        }
      });
      if (kWeight) std::copy(dot, dot + m, dots + e * width + l);
    }
  }
}

template <typename T>
inline __attribute__((always_inline)) void dw_cl_backward_row_dispatch(
    const T* g, const T* x, const T* coef, const int64_t* erow, const int64_t* ecol, int64_t n,
    int64_t W, int64_t C, int64_t wo, int64_t s, int64_t c0, int64_t width, T* gx, T* dots) {
  if (gx && dots) {
    dw_cl_backward_row_impl<T, true, true>(g, x, coef, erow, ecol, n, W, C, wo, s, c0, width, gx,
                                           dots);
  } else if (gx) {
    dw_cl_backward_row_impl<T, true, false>(g, x, coef, erow, ecol, n, W, C, wo, s, c0, width,
                                            gx, dots);
  } else if (dots) {
    dw_cl_backward_row_impl<T, false, true>(g, x, coef, erow, ecol, n, W, C, wo, s, c0, width,
                                            gx, dots);
  }
}

PANO360_VECTOR_CLONES
void dw_cl_backward_row(const float* g, const float* x, const float* coef, const int64_t* erow,
                        const int64_t* ecol, int64_t n, int64_t W, int64_t C, int64_t wo,
                        int64_t s, int64_t c0, int64_t width, float* gx, float* dots) {
  dw_cl_backward_row_dispatch(g, x, coef, erow, ecol, n, W, C, wo, s, c0, width, gx, dots);
}

PANO360_VECTOR_CLONES
void dw_cl_backward_row(const double* g, const double* x, const double* coef,
                        const int64_t* erow, const int64_t* ecol, int64_t n, int64_t W, int64_t C,
                        int64_t wo, int64_t s, int64_t c0, int64_t width, double* gx,
                        double* dots) {
  dw_cl_backward_row_dispatch(g, x, coef, erow, ecol, n, W, C, wo, s, c0, width, gx, dots);
}

// The entries of output row i that some bilinear corner reads with a weight other than 0, in
// order: their input rows and columns (at output column 0) into erow, ecol, and slot[e] the
// place of entry e among them (slot: tb.E scratch). Returns their number.
template <typename T>
int64_t active_entries(const DwTables& tb, const T* wts, int64_t i, int64_t* slot, int64_t* erow,
                       int64_t* ecol) {
  const int64_t* cn = tb.corner + i * tb.K * 4;
  const T* wt = wts + i * tb.K * 4;
  std::fill(slot, slot + tb.E, int64_t(-1));
  for (int64_t t = 0; t < tb.K * 4; ++t)
    if (wt[t] != T(0)) slot[cn[t]] = 0;
  int64_t n = 0;
  for (int64_t e = 0; e < tb.count[i]; ++e) {
    if (slot[e] < 0) continue;
    slot[e] = n;
    erow[n] = tb.rows[i * tb.E + e];
    ecol[n++] = tb.cols[i * tb.E + e];
  }
  return n;
}

// The coefficients of output row i's active entries (active_entries): coef (n, block) = the
// sum over taps k and corners q reading entry e of the corner's weight times wk (K, block),
// the taps' weights (a channel each for depthwise, (Cin, Cout) for few channels), tap k's
// block at wk + k * wk_stride (default block; a wider stride takes a slice of the channels).
// Returns n.
template <typename T>
int64_t row_coefficients(const DwTables& tb, const T* wts, const T* wk, int64_t block, int64_t i,
                         int64_t* slot, int64_t* erow, int64_t* ecol, T* coef,
                         int64_t wk_stride = -1) {
  const int64_t* cn = tb.corner + i * tb.K * 4;
  const T* wt = wts + i * tb.K * 4;
  const int64_t n = active_entries(tb, wts, i, slot, erow, ecol);
  if (wk_stride < 0) wk_stride = block;
  std::fill(coef, coef + n * block, T(0));
  for (int64_t k = 0; k < tb.K; ++k) {
    for (int64_t q = 0; q < 4; ++q) {
      const T a = wt[4 * k + q];
      if (a == T(0)) continue;
      T* __restrict__ cf = coef + slot[cn[4 * k + q]] * block;
      const T* __restrict__ w = wk + k * wk_stride;
      for (int64_t c = 0; c < block; ++c) cf[c] += a * w[c];
    }
  }
  return n;
}

}  // namespace

// x: (B, H, W, C) channels-last; weight: (C_out, K * C_in / groups), tap-major; bias: (C_out,)
// or empty. Returns (B, Ho * Wo, C_out) if out_channels_last, else (B, C_out, Ho * Wo).
torch::Tensor forward(torch::Tensor x, torch::Tensor x_planar, torch::Tensor weight,
                      std::optional<torch::Tensor> bias, torch::Tensor rows, torch::Tensor cols, torch::Tensor wts, int64_t groups,
                      int64_t wo, int64_t s, bool out_channels_last) {
  check(x, rows, cols, wts);
  weight = weight.contiguous();
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const int64_t ho = rows.size(0), K = rows.size(1), cg = C / groups;
  const int64_t cout = weight.size(0), coutg = cout / groups, kc = K * cg;
  auto out = out_channels_last ? torch::empty({B, ho * wo, cout}, x.options())
                               : torch::empty({B, cout, ho * wo}, x.options());
  const int64_t tr = tile_rows(kc, wo, ho, x.element_size());
  const int64_t ntiles = (ho + tr - 1) / tr;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sphere_conv_forward", [&] {
    Tables tb{rows.data_ptr<int64_t>(), cols.data_ptr<int64_t>(), K, W, wo, s, C};
    const scalar_t* w4 = wts.data_ptr<scalar_t>();
    // Tiles one after the other: each tile's rows are filled in parallel, then multiplied by
    // one (threaded) product outside the parallel region. A product nested in a parallel region
    // measured 5x slower on a loaded 2-core machine (threads spinning in threads).
    auto buffer = torch::empty({tr * wo, kc}, x.options());
    const bool planar = cg <= kPlanarFillMaxChannels && x_planar.defined() && x_planar.numel();
    for (int64_t idx = 0; idx < B * groups * ntiles; ++idx) {
      {
        const int64_t tile = idx % ntiles, g = (idx / ntiles) % groups, b = idx / ntiles / groups;
        const int64_t i0 = tile * tr, i1 = std::min(ho, i0 + tr), L = (i1 - i0) * wo;
        scalar_t* buf = buffer.data_ptr<scalar_t>();
        at::parallel_for(i0, i1, 1, [&](int64_t r0, int64_t r1) {
          scalar_t* dst = buf + (r0 - i0) * wo * kc;
          if (planar) {
            const scalar_t* xp = x_planar.data_ptr<scalar_t>() + (b * C + g * cg) * H * W;
            std::vector<scalar_t> st(kc * (r1 - r0) * wo);
            fill_cols_planar<scalar_t>(xp, 0, cg, cg, H, tb, w4, r0, r1, st.data());
            transpose<scalar_t>(st.data(), kc, (r1 - r0) * wo, dst);
          } else {
            const scalar_t* xb = x.data_ptr<scalar_t>() + b * H * W * C;
            fill_cols<scalar_t>(xb, g * cg, cg, tb, w4, r0, r1, dst);
          }
        });
        const auto cols_tile = buffer.narrow(0, 0, L);
        const auto weight_g = weight.narrow(0, g * coutg, coutg);
        if (out_channels_last) {
          std::optional<torch::Tensor> bias_g;
          if (bias) bias_g = bias->narrow(0, g * coutg, coutg);
          auto res = gemm_nt(cols_tile, weight_g, bias_g).contiguous();  // (L, coutg)
          const scalar_t* r = res.data_ptr<scalar_t>();
          scalar_t* o = out.data_ptr<scalar_t>() + (b * ho * wo + i0 * wo) * cout + g * coutg;
          for (int64_t p = 0; p < L; ++p)
            std::copy(r + p * coutg, r + (p + 1) * coutg, o + p * cout);
        } else {
          // weight times the tile's columns: the output rows come out channel-major.
          auto res = gemm_nt(weight_g, cols_tile, std::nullopt).contiguous();  // (coutg, L)
          const scalar_t* r = res.data_ptr<scalar_t>();
          const scalar_t* bs = bias ? bias->data_ptr<scalar_t>() + g * coutg : nullptr;
          scalar_t* o = out.data_ptr<scalar_t>() + (b * cout + g * coutg) * ho * wo + i0 * wo;
          for (int64_t n = 0; n < coutg; ++n) {
            const scalar_t add = bs ? bs[n] : scalar_t(0);
            for (int64_t p = 0; p < L; ++p) o[n * ho * wo + p] = r[n * L + p] + add;
          }
        }
      }
    }
  });
  return out;
}

// Gradients with respect to x (channels-last, (B, H, W, C)) and the weight; either may be
// skipped. grad_nchw: (B, C_out, Ho * Wo) and grad_nhwc: (B, Ho * Wo, C_out), both contiguous;
// x_planar: x as (B, C, H, W) contiguous, for the weight gradient (unused ones may be empty).
std::vector<torch::Tensor> backward(torch::Tensor grad_nchw, torch::Tensor grad_nhwc,
                                    torch::Tensor x, torch::Tensor x_planar,
                                    torch::Tensor weight, torch::Tensor rows,
                                    torch::Tensor cols, torch::Tensor wts, int64_t groups,
                                    int64_t wo, int64_t s, bool need_input, bool need_weight) {
  check(x, rows, cols, wts);
  weight = weight.contiguous();
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const int64_t ho = rows.size(0), K = rows.size(1), cg = C / groups;
  const int64_t cout = weight.size(0), coutg = cout / groups, kc = K * cg;
  auto grad_x = need_input ? torch::zeros_like(x) : torch::Tensor();
  auto grad_w = need_weight ? torch::zeros_like(weight) : torch::Tensor();
  const int64_t tr = tile_rows(kc, wo, ho, x.element_size());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sphere_conv_backward", [&] {
    Tables tb{rows.data_ptr<int64_t>(), cols.data_ptr<int64_t>(), K, W, wo, s, C};
    const scalar_t* w4 = wts.data_ptr<scalar_t>();
    auto buffer = torch::empty({tr * wo, kc}, x.options());
    std::vector<torch::Tensor> weight_t(groups);  // (kc, coutg) per group
    if (need_input)
      for (int64_t g = 0; g < groups; ++g)
        weight_t[g] = weight.narrow(0, g * coutg, coutg).t().contiguous();
    // Tiles run one after the other (their input rows overlap); work inside a tile is parallel.
    for (int64_t b = 0; b < B; ++b) {
      const scalar_t* xb = x.data_ptr<scalar_t>() + b * H * W * C;
      for (int64_t g = 0; g < groups; ++g) {
        for (int64_t i0 = 0; i0 < ho; i0 += tr) {
          const int64_t i1 = std::min(ho, i0 + tr), L = (i1 - i0) * wo;
          scalar_t* buf = buffer.data_ptr<scalar_t>();
          if (need_weight) {
            const scalar_t* xp = x_planar.data_ptr<scalar_t>() + (b * C + g * cg) * H * W;
            at::parallel_for(0, cg, 1, [&](int64_t c0, int64_t c1) {
              fill_cols_planar<scalar_t>(xp, c0, c1, cg, H, tb, w4, i0, i1, buf);
            });
            auto go = grad_nchw[b].narrow(0, g * coutg, coutg).narrow(1, i0 * wo, L).contiguous();
            auto cols_t = buffer.view({-1}).narrow(0, 0, kc * L).view({kc, L});
            grad_w.narrow(0, g * coutg, coutg).add_(gemm_nt(go, cols_t, std::nullopt));
          }
          if (need_input) {
            auto go = grad_nhwc[b].narrow(0, i0 * wo, L).narrow(1, g * coutg, coutg).contiguous();
            auto gcols = gemm_nt(go, weight_t[g], std::nullopt).contiguous();  // (L, kc)
            const scalar_t* gc = gcols.data_ptr<scalar_t>();
            scalar_t* gx = grad_x.data_ptr<scalar_t>() + b * H * W * C;
            at::parallel_for(0, cg, 1, [&](int64_t c_begin, int64_t c_end) {
              scatter_cols<scalar_t>(gc, g * cg, cg, c_begin, c_end, tb, w4, i0, i1, gx);
            });
          }
        }
      }
    }
  });
  return {grad_x, grad_w};
}

// Depthwise: x (B, C, H, W) contiguous, weight (C * m, K) (output channel o reads input
// channel o / m), bias (C * m,) or none; tables as in DwTables, wts (Ho, K, 4). Returns
// (B, C * m, Ho, Wo).
torch::Tensor depthwise_forward(torch::Tensor x, torch::Tensor weight,
                                std::optional<torch::Tensor> bias, torch::Tensor rows,
                                torch::Tensor cols, torch::Tensor count, torch::Tensor corner,
                                torch::Tensor wts, int64_t wo, int64_t s) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 4, "x: contiguous BCHW");
  TORCH_CHECK(wts.scalar_type() == x.scalar_type() && wts.is_contiguous(), "wts");
  weight = weight.contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t cout = weight.size(0), mult = cout / C;
  const DwTables tb = dw_tables(rows, cols, count, corner, W, wo, s);
  auto out = torch::empty({B, cout, tb.Ho, wo}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sphere_conv_depthwise_forward", [&] {
    const scalar_t* xd = x.data_ptr<scalar_t>();
    const scalar_t* wd = weight.data_ptr<scalar_t>();
    const scalar_t* bd = bias ? bias->contiguous().data_ptr<scalar_t>() : nullptr;
    const scalar_t* w4 = wts.data_ptr<scalar_t>();
    scalar_t* od = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * cout, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> coef(tb.E);
      for (int64_t p = begin; p < end; ++p) {
        const int64_t b = p / cout, o = p % cout;
        dw_plane_forward<scalar_t>(xd + (b * C + o / mult) * H * W, wd + o * tb.K,
                                   bd ? bd[o] : scalar_t(0), tb, w4, od + p * tb.Ho * wo,
                                   coef.data());
      }
    });
  });
  return out;
}

// Depthwise, channels-last, one output channel per input channel (inference): x (B, H, W, C)
// contiguous, weight (C, K), bias (C,) or none; tables as in DwTables, wts (Ho, K, 4). Returns
// (B, Ho, Wo, C). Per output row, the coefficient of every entry and channel is formed once
// (entries whose corners all have weight 0 are dropped); then blocks of kDwPixels output pixels
// by one cache line of channels are summed over the entries in registers (dw_cl_row), the input
// read as contiguous channel vectors: the plane-by-plane kernel above spends its time in short
// column runs when maps are small and channels many, and its scalar loads when they are large.
torch::Tensor depthwise_forward_cl(torch::Tensor x, torch::Tensor weight,
                                   std::optional<torch::Tensor> bias, torch::Tensor rows,
                                   torch::Tensor cols, torch::Tensor count, torch::Tensor corner,
                                   torch::Tensor wts, int64_t wo, int64_t s) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 4, "x: contiguous BHWC");
  TORCH_CHECK(wts.scalar_type() == x.scalar_type() && wts.is_contiguous(), "wts");
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  TORCH_CHECK(weight.size(0) == C, "one output channel per input channel");
  TORCH_CHECK(s * wo == W, "the stride divides the width");
  const auto weight_t = weight.t().contiguous();  // (K, C): a tap's weights over the channels
  const DwTables tb = dw_tables(rows, cols, count, corner, W, wo, s);
  auto out = torch::empty({B, tb.Ho, wo, C}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sphere_conv_depthwise_forward_cl", [&] {
    const scalar_t* xd = x.data_ptr<scalar_t>();
    const scalar_t* wd = weight_t.data_ptr<scalar_t>();
    const scalar_t* bd = bias ? bias->contiguous().data_ptr<scalar_t>() : nullptr;
    const scalar_t* w4 = wts.data_ptr<scalar_t>();
    scalar_t* od = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * tb.Ho, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> coef(tb.E * C);
      std::vector<int64_t> slot(tb.E), erow(tb.E), ecol(tb.E), base(2 * tb.E);
      std::vector<int64_t> offsets(tb.E * kDwPixels);
      for (int64_t p = begin; p < end; ++p) {
        const int64_t b = p / tb.Ho, i = p % tb.Ho;
        const int64_t n = row_coefficients(tb, w4, wd, C, i, slot.data(), erow.data(),
                                           ecol.data(), coef.data());
        dw_cl_row(xd + b * H * W * C, coef.data(), erow.data(), ecol.data(), n, bd, W, C, wo, s,
                  base.data(), offsets.data(), od + p * wo * C);
      }
    });
  });
  return out;
}

// Few input channels, groups 1, channels-last (inference): x (B, H, W, Cin) contiguous, weight
// (Cout, Cin, K), bias (Cout,) or none; the depthwise kernel's tables. Returns (B, Ho, Wo, Cout).
// Per output row the weights of every entry, input channel and output channel are formed once
// (coef (n, Cin, Cout)), then summed as conv_cl_row does: no im2col tile to fill, which with few
// input channels costs more than the matrix product (a network's RGB stem).
torch::Tensor few_channels_forward_cl(torch::Tensor x, torch::Tensor weight,
                                      std::optional<torch::Tensor> bias, torch::Tensor rows,
                                      torch::Tensor cols, torch::Tensor count,
                                      torch::Tensor corner, torch::Tensor wts, int64_t wo,
                                      int64_t s) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 4, "x: contiguous BHWC");
  TORCH_CHECK(wts.scalar_type() == x.scalar_type() && wts.is_contiguous(), "wts");
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), cin = x.size(3);
  const int64_t cout = weight.size(0);
  TORCH_CHECK(weight.dim() == 3 && weight.size(1) == cin, "weight: (Cout, Cin, K)");
  TORCH_CHECK(s * wo == W, "the stride divides the width");
  const auto weight_t = weight.permute({2, 1, 0}).contiguous();  // (K, Cin, Cout)
  const DwTables tb = dw_tables(rows, cols, count, corner, W, wo, s);
  TORCH_CHECK(weight.size(2) == tb.K, "weight: one column per tap");
  auto out = torch::empty({B, tb.Ho, wo, cout}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sphere_conv_few_channels_forward_cl", [&] {
    const scalar_t* xd = x.data_ptr<scalar_t>();
    const scalar_t* wd = weight_t.data_ptr<scalar_t>();
    const scalar_t* bd = bias ? bias->contiguous().data_ptr<scalar_t>() : nullptr;
    const scalar_t* w4 = wts.data_ptr<scalar_t>();
    scalar_t* od = out.data_ptr<scalar_t>();
    const int64_t block = cin * cout;
    at::parallel_for(0, B * tb.Ho, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> coef(tb.E * block);
      std::vector<int64_t> slot(tb.E), erow(tb.E), ecol(tb.E), base(2 * tb.E);
      std::vector<int64_t> offsets(tb.E * kDwPixels);
      for (int64_t p = begin; p < end; ++p) {
        const int64_t b = p / tb.Ho, i = p % tb.Ho;
        const int64_t n = row_coefficients(tb, w4, wd, block, i, slot.data(), erow.data(),
                                           ecol.data(), coef.data());
        conv_cl_row(xd + b * H * W * cin, coef.data(), erow.data(), ecol.data(), n, bd, W, cin,
                    cout, wo, s, base.data(), offsets.data(), od + p * wo * cout);
      }
    });
  });
  return out;
}

// x (B, R, S) contiguous -> (B, S, R) contiguous: (B, C, H * W) to channels-last and back.
torch::Tensor transpose_maps(torch::Tensor x) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 3, "x: contiguous (B, R, S)");
  const int64_t B = x.size(0), R = x.size(1), S = x.size(2);
  auto out = torch::empty({B, S, R}, x.options());
  const int64_t rb = (R + kTransposeBlock - 1) / kTransposeBlock;
  const int64_t sb = (S + kTransposeBlock - 1) / kTransposeBlock;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sphere_conv_transpose_maps", [&] {
    const scalar_t* xd = x.data_ptr<scalar_t>();
    scalar_t* od = out.data_ptr<scalar_t>();
    // Units of one block row (kTransposeBlock values of R) by up to 16 blocks of S.
    const int64_t chunks = (sb + 15) / 16;
    at::parallel_for(0, B * rb * chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t u = begin; u < end; ++u) {
        const int64_t b = u / (rb * chunks), r0 = (u / chunks) % rb * kTransposeBlock;
        const int64_t s_begin = u % chunks * 16 * kTransposeBlock;
        const int64_t s_end = std::min(S, s_begin + 16 * kTransposeBlock);
        transpose_blocks(xd + b * R * S, R, S, r0, s_begin, s_end, od + b * R * S);
      }
    });
  });
  return out;
}

// Gradients of depthwise_forward_cl with respect to x and the weight (either may be skipped):
// grad (B, Ho, Wo, C) and x (B, H, W, C) contiguous, weight (C, K). Returns grad_x (B, H, W, C)
// and grad_w (C, K). Parallel over images and cache lines of channels, so that no two threads
// write one value of grad_x or of the weight gradient's per-image parts; per output row, the
// entries' coefficients (row_coefficients, as the forward pass forms them) scatter the gradient
// into grad_x, and the entries' dot products of gradient and input, times the corners' weights,
// add up to the weight gradient (in double).
std::vector<torch::Tensor> depthwise_backward_cl(torch::Tensor grad, torch::Tensor x,
                                                 torch::Tensor weight, torch::Tensor rows,
                                                 torch::Tensor cols, torch::Tensor count,
                                                 torch::Tensor corner, torch::Tensor wts,
                                                 int64_t wo, int64_t s, bool need_input,
                                                 bool need_weight) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 4, "x: contiguous BHWC");
  TORCH_CHECK(grad.is_contiguous() && grad.dim() == 4, "grad: contiguous BHWC");
  TORCH_CHECK(wts.scalar_type() == x.scalar_type() && wts.is_contiguous(), "wts");
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  TORCH_CHECK(weight.size(0) == C, "one output channel per input channel");
  TORCH_CHECK(s * wo == W, "the stride divides the width");
  const auto weight_t = weight.t().contiguous();  // (K, C)
  const DwTables tb = dw_tables(rows, cols, count, corner, W, wo, s);
  TORCH_CHECK(grad.size(0) == B && grad.size(1) == tb.Ho && grad.size(2) == wo &&
                  grad.size(3) == C,
              "grad: (B, Ho, Wo, C)");
  auto grad_x = need_input ? torch::zeros_like(x) : torch::Tensor();
  auto grad_w = need_weight ? torch::empty({C, tb.K}, x.options()) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sphere_conv_depthwise_backward_cl", [&] {
    const scalar_t* xd = x.data_ptr<scalar_t>();
    const scalar_t* gd = grad.data_ptr<scalar_t>();
    const scalar_t* wd = weight_t.data_ptr<scalar_t>();
    const scalar_t* w4 = wts.data_ptr<scalar_t>();
    scalar_t* gxd = need_input ? grad_x.data_ptr<scalar_t>() : nullptr;
    constexpr int64_t kLine = 64 / sizeof(scalar_t);
    const int64_t lines = (C + kLine - 1) / kLine;
    std::vector<double> gw_parts(need_weight ? B * tb.K * C : 0, 0.0);  // (B, K, C)
    // Units of one image by one cache line of channels: threads share neither a value of
    // grad_x nor one of gw_parts (summed over the images after).
    at::parallel_for(0, B * lines, 1, [&](int64_t u0, int64_t u1) {
      std::vector<scalar_t> coef(need_input ? tb.E * C : 0), dots(tb.E * C);
      std::vector<int64_t> slot(tb.E), erow(tb.E), ecol(tb.E);
      for (int64_t b = u0 / lines; b * lines < u1; ++b) {
        const int64_t l0 = std::max(u0, b * lines) - b * lines;
        const int64_t l1 = std::min(u1, (b + 1) * lines) - b * lines;
        const int64_t c0 = l0 * kLine, width = std::min(C, l1 * kLine) - c0;
        double* gw = need_weight ? gw_parts.data() + b * tb.K * C + c0 : nullptr;
        for (int64_t i = 0; i < tb.Ho; ++i) {
          const int64_t n =
              need_input ? row_coefficients(tb, w4, wd + c0, width, i, slot.data(), erow.data(),
                                            ecol.data(), coef.data(), C)
                         : active_entries(tb, w4, i, slot.data(), erow.data(), ecol.data());
          dw_cl_backward_row(gd + (b * tb.Ho + i) * wo * C, xd + b * H * W * C, coef.data(),
                             erow.data(), ecol.data(), n, W, C, wo, s, c0, width,
                             need_input ? gxd + b * H * W * C : nullptr,
                             need_weight ? dots.data() : nullptr);
          if (!need_weight) continue;
          const int64_t* cn = tb.corner + i * tb.K * 4;
          const scalar_t* wt = w4 + i * tb.K * 4;
          for (int64_t k = 0; k < tb.K; ++k) {
            double* __restrict__ gk = gw + k * C;
            for (int64_t q = 0; q < 4; ++q) {
              const double a = wt[4 * k + q];
              if (a == 0.0) continue;  // an entry no corner reads is not active
              const scalar_t* __restrict__ d = dots.data() + slot[cn[4 * k + q]] * width;
              for (int64_t c = 0; c < width; ++c) gk[c] += a * d[c];
            }
          }
        }
      }
    });
    if (need_weight) {
      scalar_t* gwd = grad_w.data_ptr<scalar_t>();
      for (int64_t c = 0; c < C; ++c) {
        for (int64_t k = 0; k < tb.K; ++k) {
          double sum = 0.0;
          for (int64_t b = 0; b < B; ++b) sum += gw_parts[(b * tb.K + k) * C + c];
          gwd[c * tb.K + k] = scalar_t(sum);
        }
      }
    }
  });
  return {grad_x, grad_w};
}

// Gradients of depthwise_forward with respect to x and the weight (either may be skipped):
// grad (B, C * m, Ho, Wo) contiguous. Parallel over input channels, so no two threads write
// one plane or one weight row.
std::vector<torch::Tensor> depthwise_backward(torch::Tensor grad, torch::Tensor x,
                                              torch::Tensor weight, torch::Tensor rows,
                                              torch::Tensor cols, torch::Tensor count,
                                              torch::Tensor corner, torch::Tensor wts, int64_t wo,
                                              int64_t s, bool need_input, bool need_weight) {
  TORCH_CHECK(x.is_contiguous() && grad.is_contiguous(), "x, grad: contiguous BCHW");
  weight = weight.contiguous();
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t cout = weight.size(0), mult = cout / C;
  const DwTables tb = dw_tables(rows, cols, count, corner, W, wo, s);
  auto grad_x = need_input ? torch::zeros_like(x) : torch::Tensor();
  auto grad_w = need_weight ? torch::empty_like(weight) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sphere_conv_depthwise_backward", [&] {
    const scalar_t* xd = x.data_ptr<scalar_t>();
    const scalar_t* gd = grad.data_ptr<scalar_t>();
    const scalar_t* wd = weight.data_ptr<scalar_t>();
    const scalar_t* w4 = wts.data_ptr<scalar_t>();
    at::parallel_for(0, C, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> coef(tb.E);
      std::vector<double> dots(tb.E), gw(tb.K);
      for (int64_t c = begin; c < end; ++c) {
        for (int64_t o = c * mult; o < (c + 1) * mult; ++o) {
          std::fill(gw.begin(), gw.end(), 0.0);
          for (int64_t b = 0; b < B; ++b) {
            scalar_t* gx = need_input ? grad_x.data_ptr<scalar_t>() + (b * C + c) * H * W
                                      : nullptr;
            dw_plane_backward<scalar_t>(gd + (b * cout + o) * tb.Ho * wo,
                                        xd + (b * C + c) * H * W, wd + o * tb.K, tb, w4, gx,
                                        need_weight ? gw.data() : nullptr, coef.data(),
                                        dots.data());
          }
          if (need_weight) {
            scalar_t* gwd = grad_w.data_ptr<scalar_t>() + o * tb.K;
            for (int64_t k = 0; k < tb.K; ++k) gwd[k] = scalar_t(gw[k]);
          }
        }
      }
    });
  });
  return {grad_x, grad_w};
}

// Weights before taps (C_out < C_in): z (B, K, C, H, W) holds, per tap k, the weight of tap k
// applied to the input; out (B, C, Ho, Wo) = sum over k of z[:, k] read at tap k (bilinear, from
// the tables of forward). Gathers K C_out planes instead of K C_in channels.
template <typename T>
void gather_plane(const T* z, int64_t plane, const Tables& tb, const T* wts, int64_t ho,
                  T* __restrict__ out) {
  const int64_t s = tb.s, W = tb.W;
  std::fill(out, out + ho * tb.Wo, T(0));
  for (int64_t i = 0; i < ho; ++i) {
    T* __restrict__ o = out + i * tb.Wo;
    for (int64_t k = 0; k < tb.K; ++k) {
      const int64_t t = i * tb.K + k;
      const T* zk = z + k * plane;
      const Corners q = corners(tb, t);
      const int64_t r[4] = {q.rt, q.rt, q.rb, q.rb};
      const int64_t c[4] = {q.ct, q.ct + 1 == W ? 0 : q.ct + 1, q.cb, q.cb + 1 == W ? 0 : q.cb + 1};
      for (int64_t n = 0; n < 4; ++n) {
        const T a = wts[4 * t + n];
        const T* __restrict__ xr = zk + r[n] * W;
        for_runs(c[n], tb.Wo, s, W, [&](int64_t j, int64_t len, int64_t col) {
          T* __restrict__ d = o + j;
          const T* __restrict__ src = xr + col;
          if (s == 1) {
            for (int64_t m = 0; m < len; ++m) d[m] += a * src[m];
          } else {
            for (int64_t m = 0; m < len; ++m) d[m] += a * src[m * s];
          }
        });
      }
    }
  }
}

// The adjoint of gather_plane: gz (K planes of (H, W), plane apart) += taps of g (Ho, Wo).
template <typename T>
void scatter_plane(const T* __restrict__ g, int64_t plane, const Tables& tb, const T* wts,
                   int64_t ho, T* gz) {
  const int64_t s = tb.s, W = tb.W;
  for (int64_t i = 0; i < ho; ++i) {
    const T* __restrict__ gr = g + i * tb.Wo;
    for (int64_t k = 0; k < tb.K; ++k) {
      const int64_t t = i * tb.K + k;
      T* gzk = gz + k * plane;
      const Corners q = corners(tb, t);
      const int64_t r[4] = {q.rt, q.rt, q.rb, q.rb};
      const int64_t c[4] = {q.ct, q.ct + 1 == W ? 0 : q.ct + 1, q.cb, q.cb + 1 == W ? 0 : q.cb + 1};
      for (int64_t n = 0; n < 4; ++n) {
        const T a = wts[4 * t + n];
        T* __restrict__ dr = gzk + r[n] * W;
        for_runs(c[n], tb.Wo, s, W, [&](int64_t j, int64_t len, int64_t col) {
          const T* __restrict__ src = gr + j;
          T* __restrict__ d = dr + col;
          if (s == 1) {
            for (int64_t m = 0; m < len; ++m) d[m] += a * src[m];
          } else {
            for (int64_t m = 0; m < len; ++m) d[m * s] += a * src[m];
          }
        });
      }
    }
  }
}

torch::Tensor gather_taps(torch::Tensor z, torch::Tensor rows, torch::Tensor cols,
                          torch::Tensor wts, int64_t wo, int64_t s) {
  TORCH_CHECK(z.device().is_cpu() && z.is_contiguous() && z.dim() == 5, "z: contiguous BKCHW");
  const int64_t B = z.size(0), K = z.size(1), C = z.size(2), H = z.size(3), W = z.size(4);
  const int64_t ho = rows.size(0);
  TORCH_CHECK(rows.size(1) == K && wts.scalar_type() == z.scalar_type(), "tables");
  auto out = torch::empty({B, C, ho, wo}, z.options());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "sphere_conv_gather_taps", [&] {
    Tables tb{rows.data_ptr<int64_t>(), cols.data_ptr<int64_t>(), K, W, wo, s, C};
    const scalar_t* zd = z.data_ptr<scalar_t>();
    const scalar_t* w4 = wts.data_ptr<scalar_t>();
    scalar_t* od = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t b = p / C, c = p % C;
        gather_plane<scalar_t>(zd + (b * K * C + c) * H * W, C * H * W, tb, w4, ho,
                               od + p * ho * wo);
      }
    });
  });
  return out;
}

// grad (B, C, Ho, Wo) contiguous -> grad z (B, K, C, H, W).
torch::Tensor gather_taps_backward(torch::Tensor grad, torch::Tensor rows, torch::Tensor cols,
                                   torch::Tensor wts, int64_t K, int64_t H, int64_t W,
                                   int64_t s) {
  TORCH_CHECK(grad.is_contiguous() && grad.dim() == 4, "grad: contiguous BCHW");
  const int64_t B = grad.size(0), C = grad.size(1), ho = grad.size(2), wo = grad.size(3);
  auto gz = torch::zeros({B, K, C, H, W}, grad.options());
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "sphere_conv_gather_taps_backward", [&] {
    Tables tb{rows.data_ptr<int64_t>(), cols.data_ptr<int64_t>(), K, W, wo, s, C};
    const scalar_t* gd = grad.data_ptr<scalar_t>();
    const scalar_t* w4 = wts.data_ptr<scalar_t>();
    scalar_t* gzd = gz.data_ptr<scalar_t>();
    at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t b = p / C, c = p % C;
        scatter_plane<scalar_t>(gd + p * ho * wo, C * H * W, tb, w4, ho,
                                gzd + (b * K * C + c) * H * W);
      }
    });
  });
  return gz;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "SphereConv2d forward (CPU)");
  m.def("backward", &backward, "SphereConv2d backward (CPU)");
  m.def("depthwise_forward", &depthwise_forward, "depthwise SphereConv2d forward (CPU)");
  m.def("depthwise_forward_cl", &depthwise_forward_cl,
        "depthwise SphereConv2d forward, channels-last, inference (CPU)");
  m.def("few_channels_forward_cl", &few_channels_forward_cl,
        "SphereConv2d forward with few input channels, channels-last, inference (CPU)");
  m.def("gather_taps", &gather_taps, "weights-first SphereConv2d: taps of z summed (CPU)");
  m.def("gather_taps_backward", &gather_taps_backward, "adjoint of gather_taps (CPU)");
  m.def("depthwise_backward", &depthwise_backward, "depthwise SphereConv2d backward (CPU)");
  m.def("transpose_maps", &transpose_maps, "(B, R, S) -> (B, S, R), blocked (CPU)");
  m.def("depthwise_backward_cl", &depthwise_backward_cl,
        "depthwise SphereConv2d backward, channels-last (CPU)");
}
