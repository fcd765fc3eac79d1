package thresholds

import (
	"math"
	"testing"
)

// The bounds the rule uses hold their confidence: for Poisson counts of
// known mean, the 99 % lower bound is over the mean about 1 % of the time.
func TestPoissonBoundsCoverTheMean(t *testing.T) {
	for _, mean := range []float64{5, 14, 50, 200} {
		low, high := poissonBounds(mean, 2.326)
		if !(low < mean && mean < high) {
			t.Errorf("mean %g outside its own bounds [%g, %g]", mean, low, high)
		}
		// P(N >= n) for the n whose lower bound passes the mean.
		n := mean
		for {
			if l, _ := poissonBounds(n, 2.326); l > mean {
				break
			}
			n++
		}
		tail := poissonTail(mean, int(n))
		if tail > 0.015 {
			t.Errorf("mean %g: the lower bound passes it from n=%g, which comes with probability %.4f, want about 0.01 or less", mean, n, tail)
		}
	}
}

// poissonTail is P(N >= n) for N Poisson with the given mean.
func poissonTail(mean float64, n int) float64 {
	p, cdf := math.Exp(-mean), 0.0
	for k := range n {
		cdf += p
		p *= mean / float64(k+1)
	}
	return 1 - cdf
}
