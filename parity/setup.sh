#!/usr/bin/env bash
# Install R, brms and rstan from Debian for parity/fit_brms.R, and make rstan find Boost.
#
# Debian's r-cran-bh is an empty stand-in for CRAN's BH package: it ships no headers
# (Debian packages Boost once, in libboost-dev), so BH's include/ folder is missing and
# rstan stops with "Boost not found" when it compiles a model. This script links BH's
# include/boost to the system's Boost headers. It is idempotent: run it as often as you
# like. Run by `make parity`; R is never needed to build the book or run the tests.
set -euo pipefail

PACKAGES=(r-base-dev r-cran-brms r-cran-rstan r-cran-loo r-cran-posterior r-cran-jsonlite libboost-dev)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "Missing Debian packages: ${missing[*]}" >&2
    echo "Install them with: sudo apt-get install ${missing[*]}   then run make parity again." >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Where R finds BH (e.g. /usr/lib/R/site-library/BH), and where the Boost headers are.
bh_dir=$(Rscript --vanilla -e 'cat(find.package("BH"))')
boost_dir=/usr/include/boost
if [ ! -f "$boost_dir/config.hpp" ]; then
  echo "No Boost headers in $boost_dir (Debian package libboost-dev)" >&2
  exit 1
fi
if [ ! -e "$bh_dir/include/boost/config.hpp" ]; then
  if [ ! -w "$bh_dir" ]; then
    echo "BH ($bh_dir) has no headers and is not writable: run this script as root." >&2
    exit 1
  fi
  mkdir -p "$bh_dir/include"
  ln -sfn "$boost_dir" "$bh_dir/include/boost"
  echo "Linked $bh_dir/include/boost -> $boost_dir"
fi

# What rstan will compile against, checked the way rstan looks it up.
Rscript --vanilla -e '
  bh <- system.file("include", "boost", "config.hpp", package = "BH")
  if (!nzchar(bh)) stop("BH still has no Boost headers")
  cat("R", paste(R.version$major, R.version$minor, sep = "."),
      "| brms", as.character(packageVersion("brms")),
      "| rstan", as.character(packageVersion("rstan")),
      "| Boost headers via", dirname(dirname(bh)), "\n")
'
