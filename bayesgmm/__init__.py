"""bayesgmm: Gaussian mixture models on JAX."""
