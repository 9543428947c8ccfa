# Time R mclust on Old Faithful, for comparison with bayesgmm's EM model search.
#
# Run from the repository root:
#     Rscript benchmarks/mclust_time.R [n_warm]
#
# Times Mclust(X, G = 1:9) with all 14 default models: the library load, the
# first call in the process, and the median of n_warm (default 5) further calls.
# Prints one JSON line, e.g.
#     {"load_s":0.3,"first_s":0.4,"warm_s":0.3,"warm_all_s":[...],"n_warm":5,
#      "model":"EEE","G":3,"mclust":"6.0.0","R":"4.2.2"}

args <- commandArgs(trailingOnly = TRUE)
n_warm <- if (length(args) >= 1) as.integer(args[1]) else 5L
stopifnot(!is.na(n_warm), n_warm >= 1)

elapsed <- function(expr) {
  t0 <- proc.time()[["elapsed"]]
  force(expr)
  proc.time()[["elapsed"]] - t0
}

load_s <- elapsed(suppressPackageStartupMessages(library(mclust)))

X <- as.matrix(read.csv(file.path("bayesgmm", "datasets", "data", "faithful.csv")))
stopifnot(nrow(X) == 272, ncol(X) == 2)

fit <- NULL
first_s <- elapsed(fit <- Mclust(X, G = 1:9, verbose = FALSE))
warm <- vapply(seq_len(n_warm), function(i) elapsed(Mclust(X, G = 1:9, verbose = FALSE)), numeric(1))

num <- function(x) sprintf("%.4f", x)
cat(sprintf(
  paste0('{"load_s":%s,"first_s":%s,"warm_s":%s,"warm_all_s":[%s],"n_warm":%d,',
         '"model":"%s","G":%d,"mclust":"%s","R":"%s"}\n'),
  num(load_s), num(first_s), num(stats::median(warm)), paste(num(warm), collapse = ","),
  n_warm, fit$modelName, fit$G, as.character(packageVersion("mclust")),
  paste(R.version$major, R.version$minor, sep = ".")
))
