// IEEE float16 <-> float32 conversions in portable C++ (no F16C): float -> half rounds to nearest even, exactly as
// NumPy's astype(float16), NaN payloads included; half -> float is exact and also served from a 64 K-entry table.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

namespace dfl {

inline float bits_to_float(std::uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

inline std::uint32_t float_to_bits(float f) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    return bits;
}

inline float half_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1fu;
    std::uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1fu) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
    if (exponent != 0) return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    if (mantissa == 0) return bits_to_float(sign);  // signed zero
    // Subnormal half (mantissa * 2^-24): normalise into a float exponent.
    std::uint32_t float_exponent = 113;
    while (!(mantissa & 0x400u)) {
        mantissa <<= 1;
        --float_exponent;
    }
    return bits_to_float(sign | (float_exponent << 23) | ((mantissa & 0x3ffu) << 13));
}

inline std::uint16_t float_to_half(float f) {
    std::uint32_t x = float_to_bits(f);
    const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) {  // inf or NaN; a NaN keeps its top payload bits and stays a NaN
        if (x == 0x7f800000u) return sign | 0x7c00u;
        auto nan = static_cast<std::uint16_t>(0x7c00u + ((x & 0x7fffffu) >> 13));
        if (nan == 0x7c00u) ++nan;
        return sign | nan;
    }
    if (x >= 0x47800000u) return sign | 0x7c00u;  // >= 65536: overflow to inf ([65520, 65536) carries below)
    if (x < 0x38800000u) {
        // Below the smallest normal half: adding 0.5 puts the half's subnormal step (2^-24) at the float's last
        // mantissa bit, so the FPU's own round-to-nearest-even does the rounding.
        const float shifted = bits_to_float(x) + 0.5f;
        return sign | static_cast<std::uint16_t>(float_to_bits(shifted) - 0x3f000000u);
    }
    const std::uint32_t odd = (x >> 13) & 1u;
    x += 0xc8000fffu + odd;  // rebias the exponent (127 -> 15) and round half to even
    return sign | static_cast<std::uint16_t>(x >> 13);
}

// All 65536 half values as floats (built once, thread-safe).
inline const float* half_table() {
    static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (std::uint32_t h = 0; h < 65536; ++h) t[h] = half_to_float(static_cast<std::uint16_t>(h));
        return t;
    }();
    return table.data();
}

}  // namespace dfl
