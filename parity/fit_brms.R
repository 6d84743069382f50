#!/usr/bin/env Rscript
# Fit the lecture's five brms models exactly as the lecture writes them, and record what
# the parity appendix (book/appendix-parity.md) sets beside the Python fits:
#
#   - per reported parameter: estimate, est. error, 95% interval, Rhat, bulk and tail
#     ESS, and the Monte Carlo standard errors of the mean, the sd and both quantiles;
#   - PSIS-LOO of each model and the lecture's two loo_compare() tables, with Monte
#     Carlo standard errors;
#   - wall time per model: the whole brm() call, Stan's compilation, and sampling;
#   - the R, brms, rstan, StanHeaders, loo and posterior versions and the machine.
#
# Run by `make parity` (after parity/setup.sh), never by the book build or CI:
#
#   Rscript parity/fit_brms.R [--out parity/brms_results.json] [--only m1,m2] [--reuse]
#   Rscript parity/fit_brms.R --check    # build the models and print their priors only
#
# The data come from $COURSE_DATA_DIR (the Makefile points it at ../shared/data), and
# each file's SHA-256 is checked against the one course_utils/data.py pins. Fitted
# models are saved under .cache/brms/ (git-ignored), like the lecture's file= argument,
# so that --reuse can rebuild the JSON without refitting (timings then come from the
# saved fits).

suppressPackageStartupMessages({
  library(brms)
  library(posterior)
  library(loo)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
option <- function(name, default = NULL) {
  hit <- which(args == name)
  if (length(hit) == 0) return(default)
  args[hit + 1]
}
out_path <- option("--out", "parity/brms_results.json")
only <- option("--only", NULL)
reuse <- "--reuse" %in% args
models_wanted <- if (is.null(only)) c("m1", "m2", "m3", "m_simple", "m_varying") else strsplit(only, ",")[[1]]
fit_dir <- option("--fits", ".cache/brms")
dir.create(fit_dir, recursive = TRUE, showWarnings = FALSE)

# The lecture gives no seed for the two Trolley models; this one (the Trolley chapter's)
# is chosen here and recorded in the JSON.
TROLLEY_SEED <- 71

# ---- data, checked against the course's pinned hashes ---------------------------------
data_dir <- Sys.getenv("COURSE_DATA_DIR", "../shared/data")
PINNED <- c(
  "mlm.csv" = "6677a115469d57a8f565ccc4b214e8bcb97273b702b88db63a9db9d4c9b69616",
  "chimpanzees.csv" = "9a54ea2219fb013d45dfe38ca6dace254066e8985287548209967e0556612b5b",
  "Trolley.csv" = "4255f05e188831a03cd43a7de78ebf65f3ff9c14cf3302a8abd69530e826a13a"
)
# `make parity` passes each file's path as found by course_utils.data (a local folder or
# the download cache) in PARITY_DATA_<FILE>, e.g. PARITY_DATA_MLM.
read_checked <- function(file, sep) {
  variable <- paste0("PARITY_DATA_", toupper(sub("\\.csv$", "", file)))
  path <- Sys.getenv(variable, file.path(data_dir, file))
  if (!file.exists(path)) stop("missing ", path, " (set COURSE_DATA_DIR to the folder with the course's CSV files)")
  hash <- strsplit(system2("sha256sum", shQuote(path), stdout = TRUE), " ")[[1]][1]
  if (!identical(hash, PINNED[[file]])) stop(file, ": SHA-256 ", hash, ", expected ", PINNED[[file]])
  read.csv(path, sep = sep)
}

# ---- the lecture's models, as written (only file= differs: the fits go to fit_dir) ----
# Each function returns the brm() call's result; timing is added around it.
fit_m1 <- function() {
  d <- read_checked("mlm.csv", ",")
  d$id.f <- as.factor(d$id)
  brm(
    data = d,
    family = gaussian,
    bf(con ~ 0 + a,
       a ~ 0 + id.f,
       nl = TRUE),
    prior = c(prior(normal(0, 1.5), class = b, nlpar = a),
              prior(exponential(1), class = sigma)),
    iter = 2000, warmup = 1000, chains = 4, cores = 4, seed = 9
  )
}

fit_m2 <- function() {
  d <- read_checked("mlm.csv", ",")
  brm(
    data = d,
    family = gaussian,
    con ~ 1 + (1 | id),
    prior = c(prior(normal(0, 1.5), class = Intercept),
              prior(exponential(1), class = sd),
              prior(exponential(1), class = sigma)),
    iter = 2000, warmup = 1000, chains = 4, cores = 4, seed = 9
  )
}

fit_m3 <- function() {
  d <- read_checked("chimpanzees.csv", ";")
  d$treatment <- factor(1 + d$prosoc_left + 2 * d$condition)
  brm(
    family = bernoulli,
    data = d,
    bf(
      pulled_left ~ a + b,
      a ~ 1 + (1 | actor) + (1 | block),
      b ~ 0 + treatment,
      nl = TRUE),
    prior = c(prior(normal(0, 0.5), nlpar = b),
              prior(normal(0, 1.5), class = b, coef = Intercept, nlpar = a),
              prior(exponential(1), class = sd, group = actor, nlpar = a),
              prior(exponential(1), class = sd, group = block, nlpar = a)),
    chains = 4, cores = 4, iter = 2000, warmup = 1000,
    seed = 1
  )
}

fit_m_simple <- function() {
  Trolley <- read_checked("Trolley.csv", ";")
  brm(
    data = Trolley,
    family = cumulative,
    response ~ 1 + action + intention + contact,
    prior = c(prior(normal(0, 1.5), class = Intercept)),
    iter = 2000, warmup = 1000, cores = 4, chains = 4,
    seed = TROLLEY_SEED
  )
}

fit_m_varying <- function() {
  Trolley <- read_checked("Trolley.csv", ";")
  brm(
    data = Trolley,
    family = cumulative,
    response ~ 1 + action + intention + contact + (1 | id),
    prior = c(prior(normal(0, 1.5), class = Intercept),
              prior(normal(0, 0.5), class = b),
              prior(exponential(1), class = sd)),
    iter = 2000, warmup = 1000, cores = 4, chains = 4,
    seed = TROLLEY_SEED
  )
}

FITS <- list(m1 = fit_m1, m2 = fit_m2, m3 = fit_m3, m_simple = fit_m_simple, m_varying = fit_m_varying)
SEEDS <- list(m1 = 9, m2 = 9, m3 = 1, m_simple = TROLLEY_SEED, m_varying = TROLLEY_SEED)
SEED_FROM_LECTURE <- list(m1 = TRUE, m2 = TRUE, m3 = TRUE, m_simple = FALSE, m_varying = FALSE)

# The parameters each model reports: the summary()'s rows; for m3 also the actor and block
# effects, which the lecture prints with posterior_summary().
REPORTED <- list(
  m1 = "^(b_a_id\\.f[0-9]+|sigma)$",
  m2 = "^(b_Intercept|sd_id__Intercept|sigma)$",
  m3 = "^(b_a_Intercept|b_b_treatment[1-4]|sd_(actor|block)__a_Intercept|r_(actor|block)__a\\[[0-9]+,Intercept\\])$",
  m_simple = "^(b_Intercept\\[[1-6]\\]|b_(action|intention|contact))$",
  m_varying = "^(b_Intercept\\[[1-6]\\]|b_(action|intention|contact)|sd_id__Intercept)$"
)

# ---- timing: brms's compilation and rstan's sampling, traced inside brm() -------------
timing <- new.env()
trace("compile_model", where = asNamespace("brms"), print = FALSE,
      tracer = quote(assign("compile_start", Sys.time(), envir = timing)),
      exit = quote(assign("compile_end", Sys.time(), envir = timing)))
trace("fit_model", where = asNamespace("brms"), print = FALSE,
      tracer = quote(assign("sample_start", Sys.time(), envir = timing)),
      exit = quote(assign("sample_end", Sys.time(), envir = timing)))
seconds <- function(from, to) as.numeric(difftime(get(to, envir = timing), get(from, envir = timing), units = "secs"))

run_model <- function(name) {
  path <- file.path(fit_dir, paste0(name, ".rds"))
  if (reuse && file.exists(path)) {
    message(sprintf("[%s] reusing %s", name, path))
    return(readRDS(path))
  }
  rm(list = ls(timing), envir = timing)
  message(sprintf("[%s] fitting with brms (4 chains x (1000 warm-up + 1000 draws), cores = 4)", name))
  start <- Sys.time()
  fit <- FITS[[name]]()
  wall <- as.numeric(difftime(Sys.time(), start, units = "secs"))
  elapsed <- rstan::get_elapsed_time(fit$fit)  # per chain: warm-up and sampling seconds
  attr(fit, "parity_timing") <- list(
    wall_s = wall,
    compile_s = seconds("compile_start", "compile_end"),
    sampling_s = seconds("sample_start", "sample_end"),
    chain_warmup_s = unname(elapsed[, "warmup"]),
    chain_sampling_s = unname(elapsed[, "sample"])
  )
  saveRDS(fit, path)
  message(sprintf("[%s] done in %.0f s (compile %.0f s, sampling %.0f s)", name, wall,
                  attr(fit, "parity_timing")$compile_s, attr(fit, "parity_timing")$sampling_s))
  fit
}

# ---- summaries -----------------------------------------------------------------------
q025 <- function(x) quantile(x, 0.025, names = FALSE)
q975 <- function(x) quantile(x, 0.975, names = FALSE)
mcse_q025 <- function(x) unname(mcse_quantile(x, 0.025))
mcse_q975 <- function(x) unname(mcse_quantile(x, 0.975))

parameter_table <- function(fit, pattern) {
  draws <- as_draws_df(fit)
  keep <- grep(pattern, variables(draws), value = TRUE)
  table <- summarise_draws(
    subset_draws(draws, variable = keep),
    estimate = mean, est_error = sd, l95 = q025, u95 = q975,
    rhat = rhat, ess_bulk = ess_bulk, ess_tail = ess_tail,
    mcse_mean = mcse_mean, mcse_sd = mcse_sd, mcse_l95 = mcse_q025, mcse_u95 = mcse_q975
  )
  rows <- lapply(seq_len(nrow(table)), function(i) as.list(table[i, -1]))
  names(rows) <- table$variable
  rows
}

sampler_diagnostics <- function(fit) {
  np <- nuts_params(fit)
  list(
    divergent = sum(np$Value[np$Parameter == "divergent__"]),
    max_treedepth_hits = sum(np$Value[np$Parameter == "treedepth__"] >= 10),
    n_draws = ndraws(fit)
  )
}

# Monte Carlo standard error of a standard error sqrt(n var(x_i)) when each x_i carries
# Monte Carlo variance v_i (delta method; book/appendix-parity.md uses the same formula).
mcse_of_se <- function(x, v) {
  n <- length(x)
  se <- sqrt(n * var(x))
  sqrt(sum((x - mean(x))^2 * v)) * n / (n - 1) / se
}

loo_record <- function(fit) {
  start <- Sys.time()
  fit <- add_criterion(fit, "loo")
  seconds_loo <- as.numeric(difftime(Sys.time(), start, units = "secs"))
  result <- fit$criteria$loo
  est <- result$estimates
  pointwise <- result$pointwise
  v <- pointwise[, "mcse_elpd_loo"]^2
  k <- pointwise[, "influence_pareto_k"]
  list(
    fit = fit,
    record = list(
      elpd_loo = est["elpd_loo", "Estimate"], se_elpd_loo = est["elpd_loo", "SE"],
      p_loo = est["p_loo", "Estimate"], se_p_loo = est["p_loo", "SE"],
      looic = est["looic", "Estimate"], se_looic = est["looic", "SE"],
      mcse_elpd_loo = sqrt(sum(v)),
      mcse_se_elpd_loo = mcse_of_se(pointwise[, "elpd_loo"], v),
      mcse_se_p_loo = mcse_of_se(pointwise[, "p_loo"], v),
      pareto_k = list(good = sum(k <= 0.7), bad = sum(k > 0.7 & k <= 1), very_bad = sum(k > 1), max = max(k)),
      n_obs = nrow(pointwise),
      seconds = seconds_loo
    ),
    pointwise = pointwise
  )
}

compare_record <- function(loos) {
  table <- loo_compare(lapply(loos, function(l) l$fit$criteria$loo))
  best <- rownames(table)[1]
  rows <- list()
  for (name in rownames(table)) {
    diff_i <- loos[[name]]$pointwise[, "elpd_loo"] - loos[[best]]$pointwise[, "elpd_loo"]
    v <- loos[[name]]$pointwise[, "mcse_elpd_loo"]^2 + loos[[best]]$pointwise[, "mcse_elpd_loo"]^2
    rows[[name]] <- list(
      elpd_diff = table[name, "elpd_diff"], se_diff = table[name, "se_diff"],
      mcse_elpd_diff = if (name == best) 0 else sqrt(sum(v)),
      mcse_se_diff = if (name == best) 0 else mcse_of_se(diff_i, v)
    )
  }
  list(best = best, rows = rows)
}

stancode_md5 <- function(fit) {
  file <- tempfile(fileext = ".stan")
  writeLines(stancode(fit), file)
  unname(tools::md5sum(file))
}

# --check: build each model without compiling or sampling, print its priors and exit.
if ("--check" %in% args) {
  brm <- function(...) brms::brm(..., empty = TRUE)
  for (name in models_wanted) {
    fit <- FITS[[name]]()
    cat("\n====", name, "====\n")
    print(fit$formula)
    print(prior_summary(fit))
  }
  quit(save = "no")
}

# ---- run -------------------------------------------------------------------------------
previous <- if (file.exists(out_path)) fromJSON(out_path, simplifyVector = FALSE) else list()
results <- previous
results$generated_by <- "parity/fit_brms.R"
results$versions <- list(
  R = R.version.string,
  brms = as.character(packageVersion("brms")),
  rstan = as.character(packageVersion("rstan")),
  StanHeaders = as.character(packageVersion("StanHeaders")),
  loo = as.character(packageVersion("loo")),
  posterior = as.character(packageVersion("posterior"))
)
cpu <- grep("^model name", readLines("/proc/cpuinfo"), value = TRUE)
mem_kb <- as.numeric(strsplit(grep("^MemTotal", readLines("/proc/meminfo"), value = TRUE), "[[:space:]]+")[[1]][2])
results$machine <- list(
  cores = parallel::detectCores(), cpu = sub("^model name\\s*:\\s*", "", cpu[1]),
  memory_gib = round(mem_kb / 1024^2), os = utils::sessionInfo()$running
)
if (is.null(results$models)) results$models <- list()
if (is.null(results$loo_compare)) results$loo_compare <- list()

loos <- list()
for (name in models_wanted) {
  fit <- run_model(name)
  l <- loo_record(fit)
  loos[[name]] <- l
  timing_rec <- attr(fit, "parity_timing")
  results$models[[name]] <- list(
    formula = paste(deparse(formula(fit)$formula), collapse = " "),
    family = family(fit)$family,
    nobs = nobs(fit),
    levels = as.list(ngrps(fit)),
    chains = 4, iter = 2000, warmup = 1000, cores = 4,
    seed = SEEDS[[name]], seed_from_lecture = SEED_FROM_LECTURE[[name]],
    stancode_md5 = stancode_md5(fit),
    timing = timing_rec,
    diagnostics = sampler_diagnostics(fit),
    parameters = parameter_table(fit, REPORTED[[name]]),
    loo = l$record
  )
  # Write after every model, so a later failure keeps the earlier ones.
  write_json(results, out_path, auto_unbox = TRUE, pretty = TRUE, digits = NA)
}

COMPARISONS <- list(mlm = c("m1", "m2"), trolley = c("m_simple", "m_varying"))
for (comparison in names(COMPARISONS)) {
  members <- COMPARISONS[[comparison]]
  if (all(members %in% names(loos))) {
    results$loo_compare[[comparison]] <- compare_record(loos[members])
  }
}
write_json(results, out_path, auto_unbox = TRUE, pretty = TRUE, digits = NA)
message("wrote ", out_path)
