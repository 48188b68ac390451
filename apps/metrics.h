#pragma once
// Image-quality metrics of reconstructions.
#include <cstdint>

namespace mriae {

double mean_squared_error(const float* a, const float* b, int64_t n);
// The tutorial's formula: 20 log10(peak / sqrt(mse)). Infinite for identical images.
double psnr_from_mse(double mse, double peak = 1.0);

// Structural similarity (Wang, Bovik, Sheikh and Simoncelli 2004) as their reference code computes it: an
// 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, the given data range, averaged over the
// positions where the window lies inside the image. Images must be at least 11x11.
double ssim(const float* x, const float* y, int height, int width, double data_range = 1.0);

}  // namespace mriae
