# Oracle for tests/test_r_survey_oracle.py: every indicator's ratio and standard error per province with R's survey
# package (Lumley). Design: svydesign(ids = ~psu, strata = ~stratum, weights = ~weight, nest = TRUE), with
# replacement at the first stage (no fpc), lonely PSUs "adjust". Strata nest in provinces and every stratum has two
# PSUs or more (checked below), so a province's domain variance is its own strata's: per province, the covariance
# of the totals of hits y and answers a of every indicator comes from svyrecvar (what svytotal computes), and
# var(Y / A) = (V_YY - 2 R V_YA + R^2 V_AA) / A^2 (what svyratio linearises). The first indicator is also run
# through svyby(..., svyratio) on the whole design (domain estimation) and the largest relative difference printed.
# usage: Rscript oracle_survey.R forms.csv out.csv
suppressPackageStartupMessages(library(survey))
options(survey.lonely.psu = "adjust")
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c(province_code = "character", stratum = "character", psu = "character"))
psus <- tapply(d$psu, d$stratum, function(p) length(unique(p)))
provinces_of <- tapply(d$province_code, d$stratum, function(p) length(unique(p)))
if (any(psus < 2) || any(provinces_of != 1)) stop("a stratum with one PSU or in two provinces: the per-province route does not apply")
ids <- sub("^y_", "", grep("^y_", names(d), value = TRUE))
ys <- paste0("y_", ids); as <- paste0("a_", ids)
# svyrecvar's cost grows with the square of its columns: eight indicators (16 columns) a call
chunks <- split(seq_along(ids), ceiling(seq_along(ids) / 8))
out <- do.call(rbind, lapply(sort(unique(d$province_code)), function(p) {
  des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~weight, nest = TRUE, data = d[d$province_code == p, ])
  do.call(rbind, lapply(chunks, function(j) {
    cols <- c(ys[j], as[j])
    x <- as.matrix(des$variables[cols]) / des$prob
    v <- svyrecvar(x, des$cluster, des$strata, des$fpc, postStrata = des$postStrata)  # what svytotal computes
    dimnames(v) <- list(cols, cols); tot <- colSums(x)
    ty <- tot[ys[j]]; ta <- tot[as[j]]; r <- ty / ta
    vy <- diag(v)[ys[j]]; va <- diag(v)[as[j]]; cya <- v[cbind(ys[j], as[j])]
    # an exact zero (every answer of the province in one PSU of its stratum) can come out a hair below 0: se 0, not NaN
    data.frame(province_code = p, indicator_id = ids[j], ratio = unname(r),
               se = unname(sqrt(pmax((vy - 2 * r * cya + r^2 * va) / ta^2, 0))))
  }))
}))
whole <- svydesign(ids = ~psu, strata = ~stratum, weights = ~weight, nest = TRUE, data = d)
check <- svyby(as.formula(paste0("~y_", ids[1])), ~province_code, whole, svyratio,
               denominator = as.formula(paste0("~a_", ids[1])), covmat = FALSE)
same <- max(abs(SE(check) - out$se[out$indicator_id == ids[1]]) / SE(check), na.rm = TRUE)
write.csv(out, args[2], row.names = FALSE)
cat(sprintf("svyratio check %s %.3g\n", ids[1], same))
