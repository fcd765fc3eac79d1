package flows

// PoissonBounds is poissonBounds, for the external tests.
var PoissonBounds = poissonBounds
