// Native AVX-512 loops for TIES' selection and merge passes (the window pass, the candidate
// pass, the fused map; over f32 or raw BF16 inputs) and for the BF16 encode, loaded beside the
// WebAssembly module when the CPU has AVX-512 (F, BW, VL, DQ). They work on the WebAssembly
// module's own memory (setMemory), take the same arguments as the AssemblyScript exports they
// stand for (byte offsets, element counts) and give the same bits: every lane runs the same IEEE
// f32 operations in the same order, compiled with -ffp-contract=off (no fused multiply-add) and
// without fast-math. Where the CPU lacks AVX-512 (or is not x86-64: then only setMemory and
// `available: false` are built), or the addon was not built, the WebAssembly loops run
// (worker/simd/simd-module.ts).
//
// Why native: WebAssembly SIMD is 4 lanes wide and has no mask registers, so the window pass
// branches on every group of four that hits a window (about half its time went to mispredicted
// branches), while AVX-512 compresses the hits of 16 lanes without a branch.

#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdbool.h>

#if defined(__x86_64__) || defined(_M_X64)
#define HAVE_X86 1
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,popcnt")))
// the loops' helpers and bodies are inlined into dispatchers that fix their flags (model count,
// input type, form), so that each combination compiles to a loop of its own
#define INLINE static inline __attribute__((always_inline))
#else
#define HAVE_X86 0
#endif

#define KEY_MASK 0x7fffffffu
#define HI_SHIFT 15
#define LO_MASK 0x7fffu

typedef struct {
  uint8_t* mem;
  size_t len;
  napi_ref ref;
} State;

// ---------------------------------------------------------------------------------------------
// The loops

#if HAVE_X86

/** A window counter's bump that lists the counter when it leaves 0 (as the wasm bumpT). */
INLINE void bump_t(uint32_t* counts, uint32_t b, uint32_t* list) {
  uint32_t v = counts[b];
  counts[b] = v + 1;
  if (v == 0) {
    uint32_t n = list[0];
    list[1 + n] = b;
    list[0] = n + 1;
  }
}

/**
 * 16 inputs from element j: f32 values, or (bf16) BF16 words widened to f32 (the value is the high
 * half). Lanes outside `m` read as +0.
 */
AVX512 INLINE __m512 ld(const void* p, int j, __mmask16 m, int bf16) {
  if (!bf16) return _mm512_maskz_loadu_ps(m, (const float*)p + j);
  __m256i w = _mm256_maskz_loadu_epi16(m, (const uint16_t*)p + j);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(w), 16));
}

/**
 * a + b with a as the instruction's first source, whose NaN the CPU returns when both are NaN (as
 * V8 emits wasm's f32x4.add). The compiler may swap the operands of _mm512_add_ps, since addition
 * commutes but for NaN payloads; the asm keeps them in place.
 */
AVX512 INLINE __m512 add(__m512 a, __m512 b) {
  __m512 r;
  __asm__("vaddps %2, %1, %0" : "=v"(r) : "v"(a), "v"(b));
  return r;
}

AVX512 INLINE __mmask16 tail_mask(int left) {
  return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

/** Hits are collected this many elements at a time (compressed, no branch), then bumped in order. */
#define HIT_CHUNK 1024

/**
 * The passes that pick keys out of the deltas δᵢ = xᵢ − base (M models, 1 or 2; f32 or BF16
 * inputs), their hits compressed into a list 16 lanes at a time without a branch, then counted in
 * element order:
 * - window (windowAbove1 / windowAbove2): keys whose high bits h fall in [selᵢ, selᵢ + width) add
 *   1 to countsᵢ[(h − selᵢ)·2¹⁵ + (key & 0x7fff)], listed when they leave 0 (bump_t), and the keys
 *   above the window (h ≥ selᵢ + width) are counted into aboveᵢ. The wasm loops also bump a spare
 *   counter for the misses of a group that hits; takeTouched drops it, so the pairs it returns
 *   are the same.
 * - candidates (lowDeltas / lowDeltas2): keys whose high bits equal selᵢ add 1 to
 *   countsᵢ[key & 0x7fff].
 */
AVX512 INLINE void scan_hits(
    int M, int bf16, int window, const void* base, const void* const* x, int n, const uint32_t* sel, uint32_t width,
    uint32_t* const* counts, uint32_t* const* list, uint32_t* above) {
  const __m512i keymask = _mm512_set1_epi32((int)KEY_MASK);
  const __m512i low = _mm512_set1_epi32((int)LO_MASK);
  const __m512i wv = _mm512_set1_epi32((int)width);
  __m512i sv[2];
  uint32_t hits[2][HIT_CHUNK + 16];
  uint32_t up[2] = {0, 0};
  for (int i = 0; i < M; i++) sv[i] = _mm512_set1_epi32((int)sel[i]);
  for (int start = 0; start < n; start += HIT_CHUNK) {
    int end = start + HIT_CHUNK < n ? start + HIT_CHUNK : n;
    uint32_t nh[2] = {0, 0};
    for (int j = start; j < end; j += 16) {
      __mmask16 live = tail_mask(end - j);
      __m512 b = ld(base, j, live, bf16);
      for (int i = 0; i < M; i++) {
        __m512i k = _mm512_and_si512(_mm512_castps_si512(_mm512_sub_ps(ld(x[i], j, live, bf16), b)), keymask);
        __mmask16 hit;
        __m512i idx;
        if (window) {
          __m512i rel = _mm512_sub_epi32(_mm512_srli_epi32(k, HI_SHIFT), sv[i]);
          up[i] += (uint32_t)__builtin_popcount(_mm512_mask_cmpge_epi32_mask(live, rel, wv));
          hit = _mm512_mask_cmplt_epu32_mask(live, rel, wv);
          idx = _mm512_or_si512(_mm512_slli_epi32(rel, HI_SHIFT), _mm512_and_si512(k, low));
        } else {
          hit = _mm512_mask_cmpeq_epi32_mask(live, _mm512_srli_epi32(k, HI_SHIFT), sv[i]);
          idx = _mm512_and_si512(k, low);
        }
        _mm512_storeu_si512(hits[i] + nh[i], _mm512_maskz_compress_epi32(hit, idx));
        nh[i] += (uint32_t)__builtin_popcount(hit);
      }
    }
    for (int i = 0; i < M; i++) {
      if (window) for (uint32_t h = 0; h < nh[i]; h++) bump_t(counts[i], hits[i][h], list[i]);
      else for (uint32_t h = 0; h < nh[i]; h++) counts[i][hits[i][h]]++;
    }
  }
  if (window) for (int i = 0; i < M; i++) above[i] = up[i];
}

/** scan_hits with M, the input type and the pass as constants: each combination compiles to its own loop. */
AVX512 static void scan(
    int M, int bf16, int window, const void* base, const void* const* x, int n, const uint32_t* sel, uint32_t width,
    uint32_t* const* counts, uint32_t* const* list, uint32_t* above) {
#define SCAN(m, b, w) scan_hits(m, b, w, base, x, n, sel, width, counts, list, above)
  if (window) {
    if (M == 1) bf16 ? SCAN(1, 1, 1) : SCAN(1, 0, 1);
    else bf16 ? SCAN(2, 1, 1) : SCAN(2, 0, 1);
  } else if (M == 1) bf16 ? SCAN(1, 1, 0) : SCAN(1, 0, 0);
  else bf16 ? SCAN(2, 1, 0) : SCAN(2, 0, 0);
#undef SCAN
}

AVX512 INLINE __m512 ones_where(__mmask16 m) {
  return _mm512_maskz_mov_ps(m, _mm512_set1_ps(1.0f));
}

/** kᵢ as 0.0 / 1.0: p ? vᵢ > 0 : vᵢ < 0 (as the wasm agree). */
AVX512 INLINE __m512 agree(__m512 v, __mmask16 p) {
  const __m512 zero = _mm512_setzero_ps();
  __mmask16 gt = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
  __mmask16 lt = _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ);
  return ones_where((__mmask16)((p & gt) | (~p & lt)));
}

/**
 * tiesMap1 / tiesMap2 / tiesMap3 (M models; f32 or BF16 inputs): the wasm tiesMap2Of / tiesMap3Of, lane
 * for lane. One model runs as two with a second that is +0 everywhere and weight 0, as there.
 * plain: f = 1, g = 1, λ = 1 and normalised, where those operations drop out exactly.
 */
AVX512 INLINE void ties_map(
    int M, int plain, int bf16, const void* base, const void* const* x, float* out, int n,
    const float* f, const float* l, const int* g, const float* w, int norm, float lambda) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512i absmask = _mm512_set1_epi32((int)KEY_MASK);
  const __m512 lam = _mm512_set1_ps(lambda);
  __m512 lv[3], fv[3], wv[3];
  __mmask16 gm[3];
  for (int i = 0; i < 3; i++) {
    int live = i < M;
    lv[i] = _mm512_set1_ps(live ? l[i] : 0.0f);
    fv[i] = _mm512_set1_ps(live ? f[i] : 0.0f);
    wv[i] = _mm512_set1_ps(live ? w[i] : 0.0f);
    gm[i] = live && g[i] ? (__mmask16)0xffff : (__mmask16)0;
  }
  for (int j = 0; j < n; j += 16) {
    __mmask16 live = tail_mask(n - j);
    __m512 b = ld(base, j, live, bf16);
    __m512 v[3];
    for (int i = 0; i < M; i++) {
      __m512 d = _mm512_sub_ps(ld(x[i], j, live, bf16), b);
      __m512 ad = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(d), absmask));
      __mmask16 below = _mm512_cmp_ps_mask(ad, lv[i], _CMP_LT_OQ);
      if (plain) v[i] = _mm512_mul_ps(d, ones_where((__mmask16)~below));
      else v[i] = _mm512_mul_ps(fv[i], _mm512_mul_ps(d, ones_where((__mmask16)(gm[i] & ~below))));
    }
    if (M == 1) v[1] = zero;
    __m512 vote = add(v[0], v[1]);
    if (M == 3) vote = add(vote, v[2]);
    __mmask16 p = _mm512_cmp_ps_mask(vote, zero, _CMP_GE_OQ);
    __m512 k0 = agree(v[0], p);
    __m512 k1 = agree(v[1], p);
    __m512 s = add(_mm512_mul_ps(v[0], k0), _mm512_mul_ps(v[1], k1));
    __m512 d = add(_mm512_mul_ps(wv[0], k0), _mm512_mul_ps(wv[1], k1));
    if (M == 3) {
      __m512 k2 = agree(v[2], p);
      s = add(s, _mm512_mul_ps(v[2], k2));
      d = add(d, _mm512_mul_ps(wv[2], k2));
    }
    __m512 r;
    if (plain || norm) {
      __m512 q = _mm512_div_ps(s, add(d, ones_where(_mm512_cmp_ps_mask(d, zero, _CMP_EQ_OQ))));
      r = plain ? add(b, q) : add(b, _mm512_mul_ps(lam, q));
    } else {
      r = add(b, _mm512_mul_ps(lam, s));
    }
    _mm512_mask_storeu_ps(out + j, live, r);
  }
}

/** ties_map with M, the form and the input type as constants. */
AVX512 static void ties(
    int M, int plain, int bf16, const void* base, const void* const* x, float* out, int n,
    const float* f, const float* l, const int* g, const float* w, int norm, float lambda) {
#define TIES(m, pl, b) ties_map(m, pl, b, base, x, out, n, f, l, g, w, norm, lambda)
  if (!bf16) {
    if (M == 1) TIES(1, 0, 0);
    else if (M == 2) TIES(2, 0, 0);
    else TIES(3, 0, 0);
  } else if (M == 1) plain ? TIES(1, 1, 1) : TIES(1, 0, 1);
  else if (M == 2) plain ? TIES(2, 1, 1) : TIES(2, 0, 1);
  else plain ? TIES(3, 1, 1) : TIES(3, 0, 1);
#undef TIES
}

/** f32 → BF16, round to nearest even; NaN stays NaN with the quiet bit set (as the wasm encodeBf16). */
AVX512 static void encode_bf16(const uint32_t* src, uint16_t* dst, int n) {
  const __m512i bias = _mm512_set1_epi32(0x7fff);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i quiet = _mm512_set1_epi32(0x0040);
  for (int j = 0; j < n; j += 16) {
    __mmask16 live = tail_mask(n - j);
    __m512i a = _mm512_maskz_loadu_epi32(live, src + j);
    __m512i hi = _mm512_srli_epi32(a, 16);
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(a, bias), _mm512_and_si512(hi, one)), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(_mm512_castsi512_ps(a), _mm512_castsi512_ps(a), _CMP_UNORD_Q);
    __m512i r = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(hi, quiet));
    _mm256_mask_storeu_epi16(dst + j, live, _mm512_cvtepi32_epi16(r));
  }
}

static int cpu_has_avx512(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

#else
static int cpu_has_avx512(void) { return 0; }
#endif

// ---------------------------------------------------------------------------------------------
// The binding: numbers in, bounds checked against the memory, loops called

#if HAVE_X86

#define MAX_ARGS 24

typedef struct {
  napi_env env;
  State* state;
  napi_value argv[MAX_ARGS];
  size_t argc;
  int failed;
} Args;

static int args_init(Args* a, napi_env env, napi_callback_info info, size_t want) {
  a->env = env;
  a->argc = MAX_ARGS;
  a->failed = 0;
  void* data = NULL;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, NULL, &data) != napi_ok) return 0;
  if (napi_get_instance_data(env, (void**)&a->state) != napi_ok || a->state == NULL || a->state->mem == NULL) {
    napi_throw_error(env, "ERR_WEIGHTSPACE_NATIVE", "native kernels: setMemory was not called");
    return 0;
  }
  if (a->argc < want) {
    napi_throw_type_error(env, "ERR_WEIGHTSPACE_NATIVE", "native kernels: too few arguments");
    return 0;
  }
  return 1;
}

static double num(Args* a, size_t i) {
  double v = 0;
  if (a->failed) return 0;
  if (napi_get_value_double(a->env, a->argv[i], &v) != napi_ok) {
    a->failed = 1;
    napi_throw_type_error(a->env, "ERR_WEIGHTSPACE_NATIVE", "native kernels: an argument is not a number");
  }
  return v;
}

/** A byte offset with `bytes` bytes after it, inside the memory; NULL (and a thrown error) if not. */
static void* at(Args* a, size_t i, double bytes) {
  double off = num(a, i);
  if (a->failed) return NULL;
  if (!(off >= 0) || off != (double)(size_t)off || off + bytes > (double)a->state->len) {
    a->failed = 1;
    napi_throw_range_error(a->env, "ERR_WEIGHTSPACE_NATIVE", "native kernels: an array lies outside the memory");
    return NULL;
  }
  return a->state->mem + (size_t)off;
}

static int count(Args* a, size_t i) {
  double v = num(a, i);
  if (!a->failed && !(v >= 0 && v <= 0x7fffffff && v == (double)(int)v)) {
    a->failed = 1;
    napi_throw_range_error(a->env, "ERR_WEIGHTSPACE_NATIVE", "native kernels: an element count is not an integer in range");
  }
  return (int)v;
}

#endif

static napi_value undefined_value(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static void state_finalize(napi_env env, void* data, void* hint) {
  (void)hint;
  State* s = (State*)data;
  if (s->ref) napi_delete_reference(env, s->ref);
  free(s);
}

/** setMemory(buffer): the ArrayBuffer of this thread's WebAssembly memory (fixed size, never grown). */
static napi_value set_memory(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_ab = false;
  if (argc < 1 || napi_is_arraybuffer(env, argv[0], &is_ab) != napi_ok || !is_ab) {
    napi_throw_type_error(env, "ERR_WEIGHTSPACE_NATIVE", "native kernels: setMemory needs an ArrayBuffer");
    return NULL;
  }
  State* s = NULL;
  napi_get_instance_data(env, (void**)&s);
  if (s == NULL) {
    s = (State*)calloc(1, sizeof(State));
    if (s == NULL || napi_set_instance_data(env, s, state_finalize, NULL) != napi_ok) {
      free(s);
      napi_throw_error(env, "ERR_WEIGHTSPACE_NATIVE", "native kernels: out of memory");
      return NULL;
    }
  }
  if (s->ref) napi_delete_reference(env, s->ref);
  s->ref = NULL;
  void* data = NULL;
  size_t len = 0;
  napi_get_arraybuffer_info(env, argv[0], &data, &len);
  napi_create_reference(env, argv[0], 1, &s->ref);
  s->mem = (uint8_t*)data;
  s->len = len;
  return undefined_value(env);
}

#if HAVE_X86

/**
 * The scan_hits bindings, M models, BF16 or f32 inputs:
 * - windowAbove{1,2}[Bf16](base, x₀[, x₁], n, lo₀[, lo₁], width, counts₀[, counts₁], list₀[, list₁], above)
 * - lowDeltas[2][Bf16](base, x₀[, x₁], n, t₀[, t₁], lo₀[, lo₁]), each lo of 2¹⁵ counters
 */
static napi_value scan_binding(napi_env env, napi_callback_info info, int M, int bf16, int window) {
  Args a;
  if (!args_init(&a, env, info, (size_t)(window ? 4 * M + 4 : 3 * M + 2))) return NULL;
  double es = bf16 ? 2.0 : 4.0;
  size_t p = (size_t)M + 1;
  int n = count(&a, p);
  uint32_t sel[2] = {0, 0};
  for (int i = 0; i < M; i++) sel[i] = (uint32_t)num(&a, p + 1 + i);
  size_t q = p + 1 + (size_t)M;
  uint32_t width = 0;
  if (window) {
    width = (uint32_t)num(&a, q++);
    if (!a.failed && !(width >= 1 && width <= 64)) {
      napi_throw_range_error(env, "ERR_WEIGHTSPACE_NATIVE", "native kernels: a window width is not in 1..64");
      return NULL;
    }
  }
  // a window's counters (and the spare one) and its list (its length and up to one entry per
  // counter); the candidates' 2¹⁵ counters
  double span = window ? 4.0 * ((double)(width << HI_SHIFT) + 1) : 4.0 * 32768;
  const void* base = at(&a, 0, es * n);
  const void* x[2] = {NULL, NULL};
  uint32_t* counts[2] = {NULL, NULL};
  uint32_t* list[2] = {NULL, NULL};
  uint32_t* above = NULL;
  for (int i = 0; i < M; i++) {
    x[i] = at(&a, (size_t)(1 + i), es * n);
    counts[i] = at(&a, q + i, span);
    if (window) list[i] = at(&a, q + M + i, span + 4);
  }
  if (window) above = at(&a, q + 2 * M, 4.0 * M);
  if (a.failed) return NULL;
  scan(M, bf16, window, base, x, n, sel, width, counts, list, above);
  return undefined_value(env);
}

static napi_value window_above1(napi_env env, napi_callback_info info) { return scan_binding(env, info, 1, 0, 1); }
static napi_value window_above2(napi_env env, napi_callback_info info) { return scan_binding(env, info, 2, 0, 1); }
static napi_value window_above1_bf16(napi_env env, napi_callback_info info) { return scan_binding(env, info, 1, 1, 1); }
static napi_value window_above2_bf16(napi_env env, napi_callback_info info) { return scan_binding(env, info, 2, 1, 1); }
static napi_value low_deltas1(napi_env env, napi_callback_info info) { return scan_binding(env, info, 1, 0, 0); }
static napi_value low_deltas2(napi_env env, napi_callback_info info) { return scan_binding(env, info, 2, 0, 0); }
static napi_value low_deltas1_bf16(napi_env env, napi_callback_info info) { return scan_binding(env, info, 1, 1, 0); }
static napi_value low_deltas2_bf16(napi_env env, napi_callback_info info) { return scan_binding(env, info, 2, 1, 0); }

static int plain_ties(float f, int g, int norm, float lambda) {
  return f == 1.0f && g != 0 && norm != 0 && lambda == 1.0f;
}

/** tiesMap{1,2,3}[Bf16](base, M models, out, n, then f, l, g, w (M each), norm, λ). */
static napi_value ties_binding(napi_env env, napi_callback_info info, int M, int bf16) {
  Args a;
  if (!args_init(&a, env, info, (size_t)(M + 3 + 4 * M + 2))) return NULL;
  double es = bf16 ? 2.0 : 4.0;
  int n = count(&a, (size_t)M + 2);
  const void* base = at(&a, 0, es * n);
  const void* x[3] = {NULL, NULL, NULL};
  for (int i = 0; i < M; i++) x[i] = at(&a, (size_t)(1 + i), es * n);
  float* out = at(&a, (size_t)M + 1, 4.0 * n);
  float f[3], l[3], w[3];
  int g[3];
  size_t p = (size_t)M + 3;
  for (int i = 0; i < M; i++) f[i] = (float)num(&a, p + i);
  for (int i = 0; i < M; i++) l[i] = (float)num(&a, p + M + i);
  for (int i = 0; i < M; i++) g[i] = num(&a, p + 2 * M + i) != 0;
  for (int i = 0; i < M; i++) w[i] = (float)num(&a, p + 3 * M + i);
  int norm = num(&a, p + 4 * M) != 0;
  float lambda = (float)num(&a, p + 4 * M + 1);
  if (a.failed) return NULL;
  // plain drops operations that are exact no-ops there (the same bits); the wasm f32 loops keep
  // the general form, and so do these, to stay their lane-for-lane copy
  int plain = bf16;
  for (int i = 0; i < M; i++) plain = plain && plain_ties(f[i], g[i], norm, lambda);
  ties(M, plain, bf16, base, x, out, n, f, l, g, w, norm, lambda);
  return undefined_value(env);
}

static napi_value ties_map1(napi_env env, napi_callback_info info) { return ties_binding(env, info, 1, 0); }
static napi_value ties_map2(napi_env env, napi_callback_info info) { return ties_binding(env, info, 2, 0); }
static napi_value ties_map3(napi_env env, napi_callback_info info) { return ties_binding(env, info, 3, 0); }
static napi_value ties_map1_bf16(napi_env env, napi_callback_info info) { return ties_binding(env, info, 1, 1); }
static napi_value ties_map2_bf16(napi_env env, napi_callback_info info) { return ties_binding(env, info, 2, 1); }
static napi_value ties_map3_bf16(napi_env env, napi_callback_info info) { return ties_binding(env, info, 3, 1); }

// encodeBf16(src, dst, n)
static napi_value encode_bf16_binding(napi_env env, napi_callback_info info) {
  Args a;
  if (!args_init(&a, env, info, 3)) return NULL;
  int n = count(&a, 2);
  const uint32_t* src = at(&a, 0, 4.0 * n);
  uint16_t* dst = at(&a, 1, 2.0 * n);
  if (a.failed) return NULL;
  encode_bf16(src, dst, n);
  return undefined_value(env);
}

#endif

static void export_fn(napi_env env, napi_value exports, const char* name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

NAPI_MODULE_INIT() {
  int avx512 = cpu_has_avx512();
  napi_value flag;
  napi_get_boolean(env, avx512, &flag);
  // available: the CPU runs these loops; without it only setMemory is exported
  napi_set_named_property(env, exports, "available", flag);
  export_fn(env, exports, "setMemory", set_memory);
#if HAVE_X86
  if (avx512) {
    export_fn(env, exports, "windowAbove1", window_above1);
    export_fn(env, exports, "windowAbove2", window_above2);
    export_fn(env, exports, "tiesMap1", ties_map1);
    export_fn(env, exports, "tiesMap2", ties_map2);
    export_fn(env, exports, "tiesMap3", ties_map3);
    export_fn(env, exports, "windowAbove1Bf16", window_above1_bf16);
    export_fn(env, exports, "windowAbove2Bf16", window_above2_bf16);
    export_fn(env, exports, "tiesMap1Bf16", ties_map1_bf16);
    export_fn(env, exports, "tiesMap2Bf16", ties_map2_bf16);
    export_fn(env, exports, "tiesMap3Bf16", ties_map3_bf16);
    export_fn(env, exports, "encodeBf16", encode_bf16_binding);
    export_fn(env, exports, "lowDeltas", low_deltas1);
    export_fn(env, exports, "lowDeltas2", low_deltas2);
    export_fn(env, exports, "lowDeltasBf16", low_deltas1_bf16);
    export_fn(env, exports, "lowDeltas2Bf16", low_deltas2_bf16);
  }
#endif
  return exports;
}
