#!/usr/bin/env bash
# An independent snapdir manifest, from coreutils and the b3sum program only.
# Usage: b3sum-manifest.sh DIR
# snapdir's rule (0.4.2): symlinks are followed for content (`find -L`), but `stat` does not
# follow them, so a link's PERMS are its own (777) and a link to a file has SIZE = the length
# of the link text; a dangling link is skipped.
set -euo pipefail
cd "$1"
declare -A sum size
lines=()
# Deepest paths first, so a directory's children are done before it.
while IFS= read -r -d '' path; do
  [ -e "$path" ] || continue
  rel="${path#./}"
  if [ -d "$path" ]; then
    children=()
    total=0
    while IFS= read -r -d '' child; do
      [ -e "$child" ] || continue
      children+=("${sum[$child]}")
      total=$((total + ${size[$child]}))
    done < <(find -L "$path" -mindepth 1 -maxdepth 1 -print0)
    if [ ${#children[@]} -eq 0 ]; then concat=""; else concat=$(printf '%s\n' "${children[@]}" | LC_ALL=C sort -u | tr -d '\n'); fi
    sum[$path]=$(printf '%s' "$concat" | b3sum --no-names)
    size[$path]=$total
    [ "$path" = "." ] && p="./" || p="./${rel}/"
    lines+=("D $(stat -c %a "$path") ${sum[$path]} ${total} ${p}")
  else
    sum[$path]=$(b3sum --no-names < "$path")
    size[$path]=$(stat -c %s "$path")
    lines+=("F $(stat -c %a "$path") ${sum[$path]} ${size[$path]} ./${rel}")
  fi
done < <(find -L . -depth -print0 2>/dev/null)
printf '%s\n' "${lines[@]}" | LC_ALL=C sort -k5
