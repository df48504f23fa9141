#!/usr/bin/env bash
# Estimate the Heroku slug: install requirements.txt into an empty target, add the app files
# (minus .slugignore), add the Python runtime, pack with gzip and print the sizes.
#   bash bench/measure_slug.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip install --quiet --no-compile --target "$work/site-packages" -r requirements.txt 2>&1 | grep -v -i warning || true
mkdir -p "$work/app"
git ls-files | grep -v -E '^(tests|bench|docs|\.ci)/' | grep -v -E '\.md$|^README' | while read -r f; do
    mkdir -p "$work/app/$(dirname "$f")"; cp "$f" "$work/app/$f"; done
cp README.md "$work/app/"
python_home=$(python3 -c 'import sys; print(sys.base_prefix)')
tar -C "$python_home" --exclude='site-packages' --exclude='test' --exclude='__pycache__' -czf "$work/python.tgz" .
tar -C "$work" -czf "$work/deps.tgz" site-packages
tar -C "$work" -czf "$work/app.tgz" app
mb() { echo "$(( $(stat -c %s "$1") / 1024 / 1024 ))"; }
echo "installed requirements: $(du -sm "$work/site-packages" | cut -f1) MB on disk"
echo "compressed requirements: $(mb "$work/deps.tgz") MB"
echo "compressed app files:    $(mb "$work/app.tgz") MB"
echo "compressed Python $(python3 -c 'import platform; print(platform.python_version())') runtime: $(mb "$work/python.tgz") MB"
total=$(( $(stat -c %s "$work/deps.tgz") + $(stat -c %s "$work/app.tgz") + $(stat -c %s "$work/python.tgz") ))
echo "estimated slug:          $(( total / 1024 / 1024 )) MB (Heroku limit 500 MB, goal < 350 MB)"
echo "largest packages:"
du -sm "$work"/site-packages/* | sort -rn | head -8 | sed "s|$work/site-packages/||"
