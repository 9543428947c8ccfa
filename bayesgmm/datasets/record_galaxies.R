# Record the galaxy velocities of R's MASS package (Roeder 1990) into data/galaxies.csv.
# Run from the repository root: Rscript bayesgmm/datasets/record_galaxies.R
library(MASS)
stopifnot(length(galaxies) == 82)
out <- data.frame(velocity = as.numeric(galaxies))
write.csv(out, "bayesgmm/datasets/data/galaxies.csv", row.names = FALSE)
cat(sprintf("MASS %s: %d velocities (km/s), %g to %g\n", packageVersion("MASS"), nrow(out), min(out$velocity),
            max(out$velocity)))
