# Oracle for tests/test_r_survey_oracle.py: every indicator's ratio and standard error per province with R's survey
# package (Lumley). Design: svydesign(ids = ~psu, strata = ~stratum, weights = ~weight, nest = TRUE), with
# replacement at the first stage (no fpc), lonely PSUs "adjust". Per indicator the covariance of the province
# totals of y (hits) and a (answers), each zero outside its province (domain estimation), comes from svyrecvar
# (what svytotal computes), and var(Y / A) = (V_YY - 2 R V_YA + R^2 V_AA) / A^2 (what svyratio linearises).
# The first indicator is also run through svyby(..., svyratio) itself and the largest relative difference printed.
# usage: Rscript oracle_survey.R forms.csv out.csv
suppressPackageStartupMessages(library(survey))
options(survey.lonely.psu = "adjust")
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c(province_code = "character", stratum = "character", psu = "character"))
des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~weight, nest = TRUE, data = d)
ids <- sub("^y_", "", grep("^y_", names(d), value = TRUE))
provinces <- sort(unique(d$province_code))
inside <- sapply(provinces, function(p) as.numeric(d$province_code == p))
k <- length(provinces)
out <- do.call(rbind, lapply(ids, function(i) {
  x <- cbind(d[[paste0("y_", i)]] * inside, d[[paste0("a_", i)]] * inside) / des$prob
  v <- svyrecvar(x, des$cluster, des$strata, des$fpc, postStrata = des$postStrata)  # what svytotal computes
  tot <- colSums(x)
  ty <- tot[1:k]; ta <- tot[k + 1:k]; r <- ty / ta
  vy <- diag(v)[1:k]; va <- diag(v)[k + 1:k]; cya <- v[cbind(1:k, k + 1:k)]
  data.frame(province_code = provinces, indicator_id = i, ratio = r, se = sqrt((vy - 2 * r * cya + r^2 * va) / ta^2))
}))
check <- svyby(as.formula(paste0("~y_", ids[1])), ~province_code, des, svyratio,
               denominator = as.formula(paste0("~a_", ids[1])), covmat = FALSE)
same <- max(abs(SE(check) - out$se[out$indicator_id == ids[1]]) / SE(check), na.rm = TRUE)
write.csv(out, args[2], row.names = FALSE)
cat(sprintf("svyratio check %s %.3g\n", ids[1], same))
